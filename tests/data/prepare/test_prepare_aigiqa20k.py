"""AIGIQA-20K preparer on the challenge layout, whose first training rows are real (tests/fixtures/real)."""
from __future__ import annotations

import logging

import openpyxl
import pandas as pd
import pytest

from layouts import aigiqa20k
from prepare_checks import check_prepared, check_rerun_is_noop, run_prepare
from pyiqa.data.prepare import get_preparer
from pyiqa.utils.errors import DataError

# The published rows of info_train.xlsx (commit a2c5f225 of the NTIRE 2024 winners' repository): Excel row,
# name, MOS. And the published counts: 14,000 scored training rows, 2,000 val and 4,000 test (unscored).
REAL = [(2, "DALLE2_0000.png", 3.6638868235), (3, "DALLE2_0002.png", 4.173801671),
        (9102, "SD1.5_0002.png", 2.627914289), (2452, "LCM_Pixart_0000.png", 3.9951694215)]


def edit_train(root, **columns):
    path = root / "info_train.xlsx"
    table = pd.read_excel(path, dtype=object)
    for column, (row, value) in columns.items():
        table.loc[row, column] = value
    table.to_excel(path, sheet_name="Sheet1", index=False)


def test_real_excerpt_is_what_was_published():
    rows = aigiqa20k.real_rows()
    assert [(name, mos) for name, _, mos in rows] == [(name, mos) for _, name, mos in REAL]
    assert rows[0][1].startswith("A cyberpunk gopnik on the street of a Soviet slum on the moon")
    preparer = get_preparer("aigiqa20k")
    assert preparer.size == 14000 + 2000 + 4000 and preparer.mos_range == (0.0, 5.0)
    assert all(preparer.mos_range[0] <= mos <= preparer.mos_range[1] for *_, mos in REAL)


def test_aigiqa20k_challenge_release_trains_on_the_scored_part(tmp_path, caplog):
    caplog.set_level(logging.INFO)
    root = tmp_path / "aigiqa20k"
    layout = aigiqa20k.write(root)
    report = run_prepare("aigiqa20k", root, tmp_path / "out")
    assert report.dataroot == root  # img_name carries the part folder: train/<file>
    table = check_prepared("aigiqa20k", tmp_path / "out", columns=layout.columns, rows=layout.rows)
    got = [(r.img_name, float(r.mos)) for r in table.iloc[:4].itertuples()]
    assert got == [(f"train/{name}", mos) for _, name, mos in REAL]
    assert table["generator"].iloc[:4].tolist() == ["DALLE2", "DALLE2", "SD1.5", "LCM_Pixart"]
    assert table["generator"].iloc[7] == "SDXL_Turbo"
    assert table["prompt"].iloc[1].startswith("portrait of a girl in her 20 s with wavy black hair")
    assert "info_val.xlsx' lists 2 images without scores" in caplog.text
    assert "info_test.xlsx' lists 3 images without scores" in caplog.text
    check_rerun_is_noop("aigiqa20k", root, tmp_path / "out")


def test_aigiqa20k_scored_val_and_test_give_the_official_split(tmp_path):
    root = tmp_path / "aigiqa20k"
    layout = aigiqa20k.write(root, scored_val_test=True)
    report = run_prepare("aigiqa20k", root, tmp_path / "out")
    table = check_prepared("aigiqa20k", tmp_path / "out", columns=layout.columns, rows=layout.rows,
                           official=True)
    assert report.split_sizes["official"] == {"train": 12, "val": 2, "test": 3}
    assert table["official_split"].tolist() == ["train"] * 12 + ["val"] * 2 + ["test"] * 3
    assert table["img_name"].iloc[12] == "val/DALLE2_0025.png" and table["img_name"].iloc[14] == "test/DALLE2_0001.png"


@pytest.mark.parametrize("value, shown", [("n/a", "'n/a'"), (-0.5, r"-0\.5"), (float("inf"), "'?inf'?"),
                                          (None, "(''|nan|None) is empty")])
def test_aigiqa20k_bad_mos_cell_names_file_row_and_value(tmp_path, value, shown):
    root = tmp_path / "aigiqa20k"
    aigiqa20k.write(root)
    edit_train(root, mos=(2, value))
    with pytest.raises(DataError, match=rf"info_train.xlsx' row 4: mos {shown}.*expected a number >= 0"):
        run_prepare("aigiqa20k", root, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_aigiqa20k_repeated_image(tmp_path, caplog):
    root = tmp_path / "aigiqa20k"
    layout = aigiqa20k.write(root)
    edit_train(root, name=(5, "DALLE2_0000.png"), mos=(5, 3.6638868235))  # a copy of row 2
    report = run_prepare("aigiqa20k", root, tmp_path / "out")
    assert report.rows == layout.rows - 1 and "listed more than once with the same scores" in caplog.text
    edit_train(root, mos=(5, 1.0))
    with pytest.raises(DataError, match=r"'train/DALLE2_0000.png' is listed twice with different mos: "
                                        r"\S*3.6638868235\S* \(row 2\) and \S*1.0\S* \(row 7\)"):
        run_prepare("aigiqa20k", root, tmp_path / "out2")


def test_aigiqa20k_sheet_renamed_lists_the_sheets(tmp_path):
    root = tmp_path / "aigiqa20k"
    aigiqa20k.write(root)
    path = root / "info_train.xlsx"
    book = openpyxl.load_workbook(path)
    book["Sheet1"].title = "scores"
    book.save(path)
    with pytest.raises(DataError, match=r"info_train.xlsx' has no sheet 'Sheet1' .*sheets found: \['scores'\]"):
        run_prepare("aigiqa20k", root, tmp_path / "out")


def test_aigiqa20k_wrong_root_and_missing_image(tmp_path, caplog):
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(DataError, match=r"expected 'info_train.xlsx' under --root .*elsewhere"):
        run_prepare("aigiqa20k", tmp_path / "elsewhere", tmp_path / "out")
    root = tmp_path / "aigiqa20k"
    layout = aigiqa20k.write(root)
    (root / "train" / "MJ_0005.png").unlink()
    report = run_prepare("aigiqa20k", root, tmp_path / "out")
    assert report.missing == ["train/MJ_0005.png"] and report.rows == layout.rows - 1
