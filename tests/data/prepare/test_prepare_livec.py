"""LIVE Challenge preparer on a fixture in its published layout (ChallengeDB_release)."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.io

from layouts import livec
from prepare_checks import check_prepared, check_rerun_is_noop, run_prepare
from pyiqa.utils.errors import DataError


def test_livec_csv_splits_and_rerun(tmp_path):
    root = tmp_path / "livec"
    layout = livec.write(root)
    report = run_prepare("livec", root, tmp_path / "out")
    assert report.rows == layout.rows and report.dataroot == root / "Images"
    table = check_prepared("livec", tmp_path / "out", columns=layout.columns, rows=layout.rows,
                           lead=layout.lead)
    assert table["img_name"].iloc[:7].tolist() == [f"t{i}.bmp" for i in range(1, 8)]  # IQA-PyTorch's bare names
    first, bench = table.iloc[0], table.iloc[7]
    assert (first["mos"], first["std"]) == (10.0, "15.0")
    assert (bench["img_name"], bench["mos"], bench["std"]) == ("100.bmp", 34.5, "16.75")
    assert table.iloc[-1]["mos"] == 10.0 + 3.5 * 18
    check_rerun_is_noop("livec", root, tmp_path / "out")


def test_livec_missing_images_are_reported_and_left_out(tmp_path, caplog):
    root = tmp_path / "livec"
    layout = livec.write(root)
    (root / "Images" / "103.bmp").unlink()
    report = run_prepare("livec", root, tmp_path / "out")
    assert report.missing == ["103.bmp"] and report.rows == layout.rows - 1
    assert "1 of 12 listed images are missing" in caplog.text and "103.bmp" in caplog.text
    table = check_prepared("livec", tmp_path / "out", columns=layout.columns, rows=layout.rows - 1,
                           lead=layout.lead)
    assert "103.bmp" not in set(table["img_name"]) and table["img_name"].iloc[7] == "100.bmp"


def test_livec_wrong_root_names_the_expected_file(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(DataError, match=r"expected 'Data/AllImages_release.mat' under --root .*elsewhere"):
        run_prepare("livec", tmp_path / "elsewhere", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_livec_mos_count_mismatch_names_the_file(tmp_path):
    root = tmp_path / "livec"
    livec.write(root)
    scipy.io.savemat(root / "Data" / "AllMOS_release.mat", {"AllMOS_release": np.ones((1, 18))})
    with pytest.raises(DataError, match=r"AllMOS_release.mat' holds 18 MOS values for 19 images"):
        run_prepare("livec", root, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_livec_training_images_must_lead(tmp_path):
    root = tmp_path / "livec"
    livec.write(root)
    cells = np.empty((19, 1), dtype=object)
    cells[:, 0] = [f"{100 + i}.bmp" for i in range(12)] + [f"t{i}.bmp" for i in range(1, 8)]
    scipy.io.savemat(root / "Data" / "AllImages_release.mat", {"AllImages_release": cells})
    with pytest.raises(DataError, match=r"must list the 7 training images t1.bmp ... t7.bmp first"):
        run_prepare("livec", root, tmp_path / "out")


def test_livec_rows_of_iqa_pytorchs_meta_csv_come_back_unchanged(tmp_path):
    """The .mat files re-written from IQA-PyTorch's real rows (the real ones were not found): our CSV is
    its CSV, the 7 training images first with their bare names, outside every split."""
    root = tmp_path / "livec"
    layout = livec.write_real(root)
    report = run_prepare("livec", root, tmp_path / "out")
    assert report.rows == 13 and report.missing == []
    table = check_prepared("livec", tmp_path / "out", columns=layout.columns, rows=13, lead=7)
    published = pd.read_csv(livec.REAL / "livec" / "meta_info_LIVEChallengeDataset.csv", dtype=str)
    assert table["img_name"].tolist() == published["img_name"].tolist()
    for column in ("mos", "std"):
        assert table[column].astype(float).tolist() == published[column].astype(float).tolist()
    assert table.iloc[7]["img_name"] == "100.bmp"


def test_livec_bad_mos_and_missing_variable_name_file_and_entry(tmp_path):
    root = tmp_path / "livec"
    livec.write(root)
    mos = scipy.io.loadmat(root / "Data" / "AllMOS_release.mat")["AllMOS_release"].copy()
    mos[0, 9] = -2.0
    scipy.io.savemat(root / "Data" / "AllMOS_release.mat", {"AllMOS_release": mos})
    with pytest.raises(DataError, match=r"AllMOS_release.mat' entry 10 \(102.bmp\): MOS -2.0 is negative"):
        run_prepare("livec", root, tmp_path / "out")
    mos[0, 9] = np.inf
    scipy.io.savemat(root / "Data" / "AllMOS_release.mat", {"AllMOS_release": mos})
    with pytest.raises(DataError, match=r"AllMOS_release.mat' entry 10 \(102.bmp\): MOS inf is infinite"):
        run_prepare("livec", root, tmp_path / "out")
    scipy.io.savemat(root / "Data" / "AllMOS_release.mat", {"MOS": mos})
    with pytest.raises(DataError, match=r"AllMOS_release.mat' has no variable 'AllMOS_release' \(found \['MOS'\]\)"):
        run_prepare("livec", root, tmp_path / "out")
    assert not (tmp_path / "out").exists()
