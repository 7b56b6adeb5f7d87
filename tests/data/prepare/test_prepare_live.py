"""LIVE IQA Release 2 preparer on a fixture in its published layout."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.io

from layouts import live
from prepare_checks import check_prepared, check_rerun_is_noop, run_prepare
from pyiqa.utils.errors import DataError


def test_live_csv_splits_and_rerun(tmp_path):
    layout = live.write(tmp_path / "live")
    run_prepare("live", tmp_path / "live", tmp_path / "out")
    table = check_prepared("live", tmp_path / "out", columns=layout.columns, rows=layout.rows,
                           reference=layout.reference)
    first = table.iloc[0]  # entry 1 (jp2k/img1) is a reference copy: left out
    assert (first["ref_name"], first["dist_name"], first["mos"]) == ("refimgs/buildings.bmp", "jp2k/img2.bmp", 20.05)
    assert (first["dmos_realigned"], first["dmos_realigned_std"], first["distortion_type"]) == \
        ("30.05", "5.002", "jp2k")
    row = table[table["dist_name"] == "wn/img100.bmp"].iloc[0]  # entry 227 + 233 + 100
    assert (row["ref_name"], row["mos"], row["dmos_realigned"], row["dmos_realigned_std"]) == \
        ("refimgs/buildings.bmp", 47.95, "57.95", "7.1")
    assert "jp2k/img1.bmp" not in set(table["dist_name"])
    check_rerun_is_noop("live", tmp_path / "live", tmp_path / "out")


def test_live_missing_images_are_reported_and_left_out(tmp_path, caplog):
    root = tmp_path / "live"
    layout = live.write(root)
    (root / "gblur" / "img10.bmp").unlink()
    report = run_prepare("live", root, tmp_path / "out")
    assert report.missing == ["gblur/img10.bmp"] and report.rows == layout.rows - 1
    assert f"1 of {layout.rows} listed images are missing" in caplog.text and "gblur/img10.bmp" in caplog.text
    check_prepared("live", tmp_path / "out", columns=layout.columns, rows=layout.rows - 1,
                   reference=layout.reference)


def test_live_wrong_root_names_the_expected_file(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(DataError, match=r"expected 'dmos.mat' under --root .*elsewhere"):
        run_prepare("live", tmp_path / "elsewhere", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_live_malformed_mat_files_name_file_and_variable(tmp_path):
    root = tmp_path / "live"
    live.write(root)
    dmos = scipy.io.loadmat(root / "dmos.mat")
    scipy.io.savemat(root / "dmos.mat", {"dmos": dmos["dmos"][:, :981], "orgs": dmos["orgs"][:, :981]})
    with pytest.raises(DataError, match=r"dmos.mat' variable 'dmos' has 981 entries; LIVE Release 2 has 982"):
        run_prepare("live", root, tmp_path / "out")
    values = dmos["dmos"].copy()
    values[0, 1] = np.nan
    scipy.io.savemat(root / "dmos.mat", {"dmos": values, "orgs": dmos["orgs"]})
    with pytest.raises(DataError, match=r"dmos.mat' entry 2 \(jp2k/img2.bmp\): variable 'dmos' nan is not a number"):
        run_prepare("live", root, tmp_path / "out")
    scipy.io.savemat(root / "dmos.mat", {"dmos_new": dmos["dmos"], "orgs": dmos["orgs"]})
    with pytest.raises(DataError, match=r"dmos.mat' has no variable 'dmos' \(found \['dmos_new', 'orgs'\]\)"):
        run_prepare("live", root, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_live_on_the_real_realigned_dmos_gives_iqa_pytorchs_779_rows(tmp_path):
    """The real dmos_realigned.mat (982 entries; 0 at the reference copies) with our dmos.mat marking those
    entries: 779 rows, per-folder counts and first rows as in IQA-PyTorch's published meta CSV."""
    root, out = tmp_path / "live", tmp_path / "out"
    layout = live.write_real(root)
    report = run_prepare("live", root, out)
    assert report.rows == layout.rows == 779 and report.missing == []
    table = pd.read_csv(out / "meta_info_LIVEIQADataset.csv", dtype=str)
    assert list(table.columns[:6]) == layout.columns
    assert table["distortion_type"].value_counts().to_dict() == \
        {"jpeg": 175, "jp2k": 169, "wn": 145, "gblur": 145, "fastfading": 145}
    published = pd.read_csv(live.REAL / "live" / "meta_info_LIVEIQADataset.csv", dtype=str)
    assert list(published.columns) == ["ref_name", "dist_name", "mos"] == list(table.columns[:3])
    assert table["dist_name"].iloc[:30].tolist() == published["dist_name"].tolist()
    assert table["ref_name"].str.startswith("refimgs/").all() and published["ref_name"].str.startswith("refimgs/").all()
    first = table.iloc[0]
    assert (first["dist_name"], float(first["dmos_realigned"]), float(first["dmos_realigned_std"])) == \
        ("jp2k/img2.bmp", 15.512954417537028, 1.6294556597749836)
    realigned = table.set_index("dist_name")["dmos_realigned"].astype(float)
    assert realigned.min() == pytest.approx(-2.64, abs=0.01) and realigned["jpeg/img57.bmp"] == realigned.min()


def test_live_bad_dmos_and_std_name_file_entry_and_value(tmp_path):
    root = tmp_path / "live"
    live.write(root)
    dmos = scipy.io.loadmat(root / "dmos.mat")
    values = dmos["dmos"].copy()
    values[0, 227 + 2] = np.inf  # jpeg/img3
    scipy.io.savemat(root / "dmos.mat", {"dmos": values, "orgs": dmos["orgs"]})
    with pytest.raises(DataError, match=r"dmos.mat' entry 230 \(jpeg/img3.bmp\): variable 'dmos' inf is infinite"):
        run_prepare("live", root, tmp_path / "out")
    values[0, 227 + 2] = -4.0
    scipy.io.savemat(root / "dmos.mat", {"dmos": values, "orgs": dmos["orgs"]})
    with pytest.raises(DataError, match=r"dmos.mat' entry 230 \(jpeg/img3.bmp\): variable 'dmos' -4.0 is negative"):
        run_prepare("live", root, tmp_path / "out")
    scipy.io.savemat(root / "dmos.mat", {"dmos": dmos["dmos"], "orgs": dmos["orgs"]})
    realigned = scipy.io.loadmat(root / "dmos_realigned.mat")
    std = realigned["dmos_std"].copy()
    std[0, 227 + 2] = -1.0
    scipy.io.savemat(root / "dmos_realigned.mat", {"dmos_new": realigned["dmos_new"], "dmos_std": std})
    with pytest.raises(DataError, match=r"realigned.mat' entry 230 \(jpeg/img3.bmp\): variable 'dmos_std' -1.0 "
                                        r"is negative"):
        run_prepare("live", root, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_live_mat_file_missing_a_variable_names_it(tmp_path):
    root = tmp_path / "live"
    live.write(root)
    realigned = scipy.io.loadmat(root / "dmos_realigned.mat")
    scipy.io.savemat(root / "dmos_realigned.mat", {"dmos_new": realigned["dmos_new"]})
    with pytest.raises(DataError, match=r"dmos_realigned.mat' has no variable 'dmos_std' \(found \['dmos_new'\]\)"):
        run_prepare("live", root, tmp_path / "out")
