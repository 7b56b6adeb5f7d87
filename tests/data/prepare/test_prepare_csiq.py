"""CSIQ preparer on a fixture in its published layout."""
from __future__ import annotations

import openpyxl
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
    del book["all_by_image"]
    book.save(root / "csiq.DMOS.xlsx")
    with pytest.raises(DataError, match=r"has no sheet 'all_by_image'"):
        run_prepare("csiq", root, tmp_path / "out")
    assert not (tmp_path / "out").exists()
