"""LIVE IQA Release 2 preparer on a fixture in its published layout."""
from __future__ import annotations

import numpy as np
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
    assert (first["ref_name"], first["dist_name"], first["mos"]) == ("buildings.bmp", "jp2k/img2.bmp", 20.05)
    assert (first["dmos_realigned"], first["dmos_realigned_std"], first["distortion_type"]) == \
        ("30.05", "5.002", "jp2k")
    row = table[table["dist_name"] == "wn/img100.bmp"].iloc[0]  # entry 227 + 233 + 100
    assert (row["ref_name"], row["mos"], row["dmos_realigned"], row["dmos_realigned_std"]) == \
        ("buildings.bmp", 47.95, "57.95", "7.1")
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
    with pytest.raises(DataError, match=r"dmos.mat' variable 'dmos' of jp2k/img2.bmp is nan, not a number"):
        run_prepare("live", root, tmp_path / "out")
    scipy.io.savemat(root / "dmos.mat", {"dmos_new": dmos["dmos"], "orgs": dmos["orgs"]})
    with pytest.raises(DataError, match=r"dmos.mat' has no variable 'dmos' \(found \['dmos_new', 'orgs'\]\)"):
        run_prepare("live", root, tmp_path / "out")
    assert not (tmp_path / "out").exists()
