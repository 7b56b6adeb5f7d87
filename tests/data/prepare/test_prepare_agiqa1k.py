"""AGIQA-1K preparer: on the authors' real workbook (tests/fixtures/real/agiqa1k, see SOURCE.md) and on a
fixture in its published layout."""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from layouts import agiqa1k, tiny_image
from prepare_checks import check_prepared, check_rerun_is_noop, run_prepare
from pyiqa.data.prepare import get_preparer
from pyiqa.utils.errors import DataError

REAL = Path(__file__).resolve().parents[2] / "fixtures" / "real" / "agiqa1k"


def real_root(tmp_path: Path, images=()) -> Path:
    root = tmp_path / "agiqa1k"
    (root / "file").mkdir(parents=True)
    for name in ("AIGC_MOS_Zscore.xlsx", "AIGC_all.csv"):
        shutil.copy(REAL / name, root / name)
    for k, name in enumerate(images):
        tiny_image(root / "file" / name, seed=k)
    return root


def test_agiqa1k_real_workbook_keeps_the_ordered_row_of_the_repeated_image(tmp_path, caplog):
    caplog.set_level("INFO")
    root = real_root(tmp_path, images=["dreamStudio_8_5_0_0.jpg", "deepai_0_0_0_0.jpg"])
    annotations = get_preparer("agiqa1k").read(root)
    table = annotations.table
    assert len(table) == 1079 and table["img_name"].is_unique  # 1,080 rows, one name twice
    assert table["generator"].value_counts().to_dict() == {"deepai": 720, "dreamStudio": 359}
    first, repeated = table.iloc[0], table.set_index("img_name").loc["dreamStudio_8_9_1_1.jpg"]
    assert (first["img_name"], first["prompt"]) == ("deepai_0_0_0_0.jpg", "bird, driving aircraft, city, anime style")
    assert first["mos"] == pytest.approx(2.7934105045636524, abs=1e-12)
    assert repeated["mos"] == pytest.approx(0.4414155439958131, abs=1e-12)  # row 1080, not row 1081's 2.084
    assert (table["mos"].min(), table["mos"].max()) == (0.0, 5.0)
    assert set(table["label_file"]) == {"AIGC_MOS_Zscore.xlsx"}
    assert annotations.origins[-1] == "row 1080"
    assert "'dreamStudio_8_9_1_1.jpg' is listed 2 times in AIGC_MOS_Zscore.xlsx (row 1080: MOS 0.4414; " \
           "row 1081: MOS 2.084); kept row 1080" in caplog.text
    assert "1 image(s) under" in caplog.text and "['dreamStudio_8_5_0_0.jpg']" in caplog.text
    assert "labels from '" in caplog.text and "AIGC_MOS_Zscore.xlsx' (sheet Sheet1); 'AIGC_all.csv' beside " \
        "it is not read" in caplog.text
    # the CSV's scores are not the workbook's: nothing of it reached the table
    csv = pd.read_csv(root / "AIGC_all.csv").set_index("Image")["Score"]
    assert table.set_index("img_name").loc["deepai_9_6_0_1.jpg", "mos"] != pytest.approx(csv["deepai_9_6_0_1.jpg"])
    assert "dreamStudio_8_9_1_.jpg" not in set(table["img_name"])


def test_agiqa1k_prepared_from_the_real_workbook(tmp_path, caplog):
    names = pd.read_excel(REAL / "AIGC_MOS_Zscore.xlsx", sheet_name="Sheet1")["Image"].tolist()
    root = real_root(tmp_path, images=names[:40])  # a few images downloaded: the rest reported missing
    report = run_prepare("agiqa1k", root, tmp_path / "out")
    assert report.rows == 40 and len(report.missing) == 1039
    table = pd.read_csv(tmp_path / "out" / "meta_info_AGIQA1KDataset.csv")
    assert table["img_name"].tolist() == names[:40] and set(table["label_file"]) == {"AIGC_MOS_Zscore.xlsx"}


def test_agiqa1k_csv_splits_and_rerun(tmp_path):
    layout = agiqa1k.write(tmp_path / "agiqa1k", with_csv=True)
    run_prepare("agiqa1k", tmp_path / "agiqa1k", tmp_path / "out")
    table = check_prepared("agiqa1k", tmp_path / "out", columns=layout.columns, rows=layout.rows)
    second, last = table.iloc[1], table.iloc[11]
    assert (second["img_name"], float(second["mos"]), second["prompt"]) == \
        ("deepai_1_2_0_1.jpg", 0.5, "cat, having pizza, city, realistic style")
    assert (second["generator"], second["main_object"], second["second_object"], second["place"],
            second["style"], second["label_file"]) == ("deepai", "1", "2", "0", "1", "AIGC_MOS_Zscore.xlsx")
    assert (last["img_name"], float(last["mos"]), last["generator"]) == \
        ("dreamStudio_2_2_0_0.jpg", pytest.approx(4.590909091), "dreamStudio")
    check_rerun_is_noop("agiqa1k", tmp_path / "agiqa1k", tmp_path / "out")


def test_agiqa1k_only_the_csv_is_an_error_naming_both_files(tmp_path):
    root = tmp_path / "agiqa1k"
    agiqa1k.write(root, with_csv=True)
    (root / "AIGC_MOS_Zscore.xlsx").unlink()
    with pytest.raises(DataError, match=r"AIGC_MOS_Zscore.xlsx' is missing; only 'AIGC_all.csv' is there"):
        run_prepare("agiqa1k", root, tmp_path / "out")
    assert not (tmp_path / "out").exists()


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


@pytest.mark.parametrize("cell, reason", [("?", "not a"), ("", "empty"), ("inf", "infinite"),
                                          (-0.5, "negative")])
def test_agiqa1k_bad_mos_cell_names_file_row_and_value(tmp_path, cell, reason):
    root = tmp_path / "agiqa1k"
    agiqa1k.write(root)
    book = pd.read_excel(root / "AIGC_MOS_Zscore.xlsx", sheet_name=0)
    book["MOS"] = book["MOS"].astype(object)
    book.loc[2, "MOS"] = cell
    book.to_excel(root / "AIGC_MOS_Zscore.xlsx", sheet_name="Sheet1", index=False, engine="openpyxl")
    with pytest.raises(DataError, match=rf"AIGC_MOS_Zscore.xlsx' row 4: MOS .* is {reason}"):
        run_prepare("agiqa1k", root, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_agiqa1k_renamed_sheet_lists_the_sheets_found(tmp_path):
    root = tmp_path / "agiqa1k"
    agiqa1k.write(root)
    book = pd.read_excel(root / "AIGC_MOS_Zscore.xlsx", sheet_name=0)
    book.to_excel(root / "AIGC_MOS_Zscore.xlsx", sheet_name="labels", index=False, engine="openpyxl")
    with pytest.raises(DataError, match=r"has no sheet 'Sheet1' .*sheets found: \['labels'\]"):
        run_prepare("agiqa1k", root, tmp_path / "out")
