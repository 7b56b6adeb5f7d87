"""AGIQA-1K preparer on a fixture in its published layout (the XLSX workbook, or the repository's CSV)."""
from __future__ import annotations

import pandas as pd
import pytest

from layouts import agiqa1k
from prepare_checks import check_prepared, check_rerun_is_noop, run_prepare
from pyiqa.utils.errors import DataError


def test_agiqa1k_csv_splits_and_rerun(tmp_path):
    layout = agiqa1k.write(tmp_path / "agiqa1k")
    run_prepare("agiqa1k", tmp_path / "agiqa1k", tmp_path / "out")
    table = check_prepared("agiqa1k", tmp_path / "out", columns=layout.columns, rows=layout.rows)
    second, last = table.iloc[1], table.iloc[11]
    assert (second["img_name"], float(second["mos"]), second["prompt"]) == \
        ("deepai_1_2_0_1.jpg", 0.5, "cat having pizza in the city, realistic style")
    assert (second["generator"], second["main_object"], second["second_object"], second["place"],
            second["style"]) == ("deepai", "1", "2", "0", "1")
    assert (last["img_name"], float(last["mos"]), last["generator"]) == \
        ("dreamStudio_2_2_0_0.jpg", pytest.approx(4.590909091), "dreamStudio")
    check_rerun_is_noop("agiqa1k", tmp_path / "agiqa1k", tmp_path / "out")


def test_agiqa1k_reads_the_repository_csv_without_the_workbook(tmp_path):
    root = tmp_path / "agiqa1k"
    layout = agiqa1k.write(root, source="csv")
    with open(root / "AIGC_all.csv", "a") as f:
        f.write("dreamStudio_8_9_1_.jpg,2.045454545\n")  # the release's malformed name, no such image
    report = run_prepare("agiqa1k", root, tmp_path / "out")
    assert report.missing == ["dreamStudio_8_9_1_.jpg"] and report.rows == layout.rows
    table = check_prepared("agiqa1k", tmp_path / "out", columns=layout.columns, rows=layout.rows)
    assert (table["img_name"][3], float(table["mos"][3]), table["prompt"][3], table["place"][3]) == \
        ("deepai_3_0_1_1.jpg", pytest.approx(1.318181818), "", "1")


def test_agiqa1k_missing_images_are_reported_and_left_out(tmp_path, caplog):
    root = tmp_path / "agiqa1k"
    layout = agiqa1k.write(root)
    (root / "file" / "dreamStudio_1_2_0_1.jpg").unlink()
    report = run_prepare("agiqa1k", root, tmp_path / "out")
    assert report.missing == ["dreamStudio_1_2_0_1.jpg"] and report.rows == layout.rows - 1
    assert "1 of 12 listed images are missing" in caplog.text and "dreamStudio_1_2_0_1.jpg" in caplog.text
    check_prepared("agiqa1k", tmp_path / "out", columns=layout.columns, rows=layout.rows - 1)


def test_agiqa1k_wrong_root_names_the_expected_file(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(DataError, match=r"expected 'AIGC_MOS_Zscore.xlsx' under --root .*elsewhere"):
        run_prepare("agiqa1k", tmp_path / "elsewhere", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_agiqa1k_non_numeric_mos_names_the_row(tmp_path):
    root = tmp_path / "agiqa1k"
    agiqa1k.write(root)
    book = pd.read_excel(root / "AIGC_MOS_Zscore.xlsx", sheet_name=0)
    book["MOS"] = book["MOS"].astype(object)
    book.loc[2, "MOS"] = "?"
    book.to_excel(root / "AIGC_MOS_Zscore.xlsx", sheet_name="Sheet1", index=False, engine="openpyxl")
    with pytest.raises(DataError, match=r"AIGC_MOS_Zscore.xlsx' row 4: MOS '\?' is not a number"):
        run_prepare("agiqa1k", root, tmp_path / "out")
    assert not (tmp_path / "out").exists()
