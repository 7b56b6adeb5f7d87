"""AADB preparer on a fixture in its published layout."""
from __future__ import annotations

import pytest

from layouts import aadb
from prepare_checks import check_prepared, check_rerun_is_noop, run_prepare
from pyiqa.data.meta_info import read_split_pickle, split_from_column
from pyiqa.data.prepare import pickle_name
from pyiqa.utils.errors import DataError


def test_aadb_csv_splits_and_rerun(tmp_path):
    layout = aadb.write(tmp_path / "aadb")
    run_prepare("aadb", tmp_path / "aadb", tmp_path / "out")
    table = check_prepared("aadb", tmp_path / "out", columns=layout.columns, rows=layout.rows,
                           official=layout.official)
    first = table.iloc[0]
    assert (first["img_name"], first["mos"]) == (aadb.image_name(0), 0.025)
    assert (first["BalacingElements"], first["ColorHarmony"], first["VividColor"]) == ("-0.4", "0.2", "-1.0")
    assert (table["img_name"][10], table["mos"][10]) == (aadb.image_name(10), 0.675)  # first validation line
    assert (table["img_name"][13], table["mos"][13]) == (aadb.image_name(13), 0.775)  # first TestNew line
    split = split_from_column(table, "official_split", "csv")
    assert split == {"train": list(range(10)), "val": [10, 11, 12], "test": [13, 14, 15, 16]}
    assert read_split_pickle(tmp_path / "out" / pickle_name("aadb", "official"), 1) == split
    check_rerun_is_noop("aadb", tmp_path / "aadb", tmp_path / "out")


def test_aadb_missing_images_are_reported_and_left_out(tmp_path, caplog):
    root = tmp_path / "aadb"
    layout = aadb.write(root)
    missing = aadb.image_name(11)
    (root / "datasetImages_originalSize" / missing).unlink()
    report = run_prepare("aadb", root, tmp_path / "out")
    assert report.missing == [missing] and report.rows == layout.rows - 1
    assert "1 of 17 listed images are missing" in caplog.text and missing in caplog.text
    table = check_prepared("aadb", tmp_path / "out", columns=layout.columns, rows=layout.rows - 1,
                           official=True)
    assert split_from_column(table, "official_split", "csv")["val"] == [10, 11]


def test_aadb_wrong_root_names_the_expected_file(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(DataError, match=r"expected 'imgListFiles_label/imgListTrainRegression_score.txt' "
                                        r"under --root .*elsewhere"):
        run_prepare("aadb", tmp_path / "elsewhere", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_aadb_non_numeric_score_names_the_line(tmp_path):
    root = tmp_path / "aadb"
    aadb.write(root)
    path = root / "imgListFiles_label" / "imgListValidationRegression_score.txt"
    lines = path.read_text().splitlines()
    lines[1] = f"{aadb.image_name(11)} n/a"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"imgListValidationRegression_score.txt' line 2: value 'n/a'"):
        run_prepare("aadb", root, tmp_path / "out")


def test_aadb_without_attribute_lists_keeps_the_score(tmp_path):
    root = tmp_path / "aadb"
    layout = aadb.write(root)
    for path in (root / "imgListFiles_label").glob("*Regression_DoF.txt"):
        path.unlink()
    run_prepare("aadb", root, tmp_path / "out")
    columns = [c for c in layout.columns if c != "DoF"]
    check_prepared("aadb", tmp_path / "out", columns=columns, rows=layout.rows, official=True)
