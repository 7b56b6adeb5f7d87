"""CSIQ preparer on a fixture in its published layout."""
from __future__ import annotations

import openpyxl
import pandas as pd
import pytest

from layouts import csiq
from prepare_checks import check_prepared, check_rerun_is_noop, run_prepare
from pyiqa.utils.errors import DataError


def test_csiq_csv_splits_and_rerun(tmp_path):
    layout = csiq.write(tmp_path / "csiq")
    run_prepare("csiq", tmp_path / "csiq", tmp_path / "out")
    table = check_prepared("csiq", tmp_path / "out", columns=layout.columns, rows=layout.rows,
                           reference=layout.reference)
    first = table.iloc[0]
    assert (first["ref_name"], first["dist_name"], first["dmos"], first["std"]) == \
        ("1600.png", "awgn/1600.AWGN.1.png", 0.12, "0.05")
    row = table[table["dist_name"] == "jpeg2000/butter_flower.jpeg2000.2.png"].iloc[0]
    assert (row["ref_name"], row["dmos"], row["std"], row["distortion_type"], row["distortion_level"]) == \
        ("butter_flower.png", 0.264, "0.32", "jpeg2000", "2")
    assert "blur/bridge.BLUR.1.png" in set(table["dist_name"])
    check_rerun_is_noop("csiq", tmp_path / "csiq", tmp_path / "out")


def test_csiq_missing_images_are_reported_and_left_out(tmp_path, caplog):
    root = tmp_path / "csiq"
    layout = csiq.write(root)
    (root / "dst_imgs" / "blur" / "boston.BLUR.2.png").unlink()
    report = run_prepare("csiq", root, tmp_path / "out")
    assert report.missing == ["blur/boston.BLUR.2.png"] and report.rows == layout.rows - 1
    assert f"1 of {layout.rows} listed images are missing" in caplog.text
    assert "blur/boston.BLUR.2.png" in caplog.text
    check_prepared("csiq", tmp_path / "out", columns=layout.columns, rows=layout.rows - 1,
                   reference=layout.reference)


def test_csiq_wrong_root_names_the_expected_file(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(DataError, match=r"expected 'csiq.DMOS.xlsx' under --root .*elsewhere"):
        run_prepare("csiq", tmp_path / "elsewhere", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_csiq_malformed_sheet_names_row_and_value(tmp_path):
    root = tmp_path / "csiq"
    csiq.write(root)
    book = openpyxl.load_workbook(root / "csiq.DMOS.xlsx")
    book["all_by_image"]["I7"] = "n/a"  # the dmos of the third image (rows 1-4: title, header)
    book.save(root / "csiq.DMOS.xlsx")
    with pytest.raises(DataError, match=r"sheet 'all_by_image' row 7: dmos 'n/a' is not a number"):
        run_prepare("csiq", root, tmp_path / "out")
    book["all_by_image"].title = "by image"
    book.save(root / "csiq.DMOS.xlsx")
    with pytest.raises(DataError, match=r"has no sheet 'all_by_image'.*sheets found: \['all_by_distortion', "
                                        r"'by image'\]"):
        run_prepare("csiq", root, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_csiq_rows_of_iqa_pytorchs_meta_csv_come_back_in_its_order(tmp_path):
    """A workbook re-written from IQA-PyTorch's real CSIQ rows (the real workbook was not found), listed by
    image as the all_by_image sheet is: our rows come back in IQA-PyTorch's order, with its DMOS."""
    layout = csiq.write_real(tmp_path / "csiq")
    report = run_prepare("csiq", tmp_path / "csiq", tmp_path / "out")
    assert report.rows == 58 and report.missing == []
    table = check_prepared("csiq", tmp_path / "out", columns=layout.columns, rows=58, reference="ref_name")
    published = pd.read_csv(csiq.REAL / "csiq" / "meta_info_CSIQDataset.csv", dtype=str)
    assert table["dist_name"].str.split("/").str[1].tolist() == published["dist_name"].tolist()
    assert table["ref_name"].tolist() == published["ref_name"].tolist()
    assert table["dmos"].astype(float).tolist() == published["dmos"].astype(float).tolist()
    assert table["distortion_type"].drop_duplicates().tolist() == ["awgn", "jpeg", "jpeg2000", "fnoise", "blur",
                                                                   "contrast"]


@pytest.mark.parametrize("cell, message", [("inf", "dmos 'inf' is infinite"), (-0.2, "dmos -0.2 is negative"),
                                           (None, "dmos nan is not a number")])
def test_csiq_bad_dmos_cell_names_sheet_row_and_value(tmp_path, cell, message):
    root = tmp_path / "csiq"
    csiq.write(root)
    book = openpyxl.load_workbook(root / "csiq.DMOS.xlsx")
    book["all_by_image"]["I9"] = cell
    book.save(root / "csiq.DMOS.xlsx")
    with pytest.raises(DataError, match=rf"sheet 'all_by_image' row 9: {message}"):
        run_prepare("csiq", root, tmp_path / "out")
