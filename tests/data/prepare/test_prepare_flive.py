"""FLIVE preparer on a fixture in its published layout."""
from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from layouts import flive, tiny_image
from prepare_checks import check_prepared, check_rerun_is_noop, run_prepare
from pyiqa.data.meta_info import read_split_pickle, split_from_column
from pyiqa.data.prepare import split_pickle_name
from pyiqa.utils.errors import DataError

PUBLISHED_HEADER = ("mos_patch_1,name_patch,width_patch_1,height_patch_1,top_patch_1,left_patch_1,"
                    "bottom_patch_1,right_patch_1,mos_patch_2,width_patch_2,height_patch_2,top_patch_2,"
                    "left_patch_2,bottom_patch_2,right_patch_2,mos_patch_3,width_patch_3,height_patch_3,"
                    "top_patch_3,left_patch_3,bottom_patch_3,right_patch_3,mos_image,name_image,width_image,"
                    "height_image,top_image,left_image,bottom_image,right_image")


def test_flive_csv_splits_and_rerun(tmp_path):
    layout = flive.write(tmp_path / "flive")
    assert (tmp_path / "flive" / "database" / "labels640.csv").read_text().splitlines()[0] == PUBLISHED_HEADER
    run_prepare("flive", tmp_path / "flive", tmp_path / "out")
    table = check_prepared("flive", tmp_path / "out", columns=layout.columns, rows=layout.rows,
                           official=layout.official)
    assert (table["img_name"][1], table["mos"][1]) == ("blur_dataset/motion0044.jpg", 77.123456789)
    assert (table["img_name"][9], table["mos"][9]) == ("blur_dataset/motion0091.jpg", 0.0)
    split = split_from_column(table, "official_split", "csv")
    assert split["test"] == flive.TEST and split["val"] == flive.VALID
    assert split["train"] == [k for k in range(layout.rows) if k not in flive.TEST + flive.VALID]
    assert read_split_pickle(tmp_path / "out" / split_pickle_name("flive", "official"), 1) == split
    check_rerun_is_noop("flive", tmp_path / "flive", tmp_path / "out")


def test_flive_accepts_the_authors_file_names(tmp_path):
    db = tmp_path / "flive" / "database"
    layout = flive.write(tmp_path / "flive")
    (db / "labels=640_padded.csv").rename(db / "labels<=640_padded.csv")
    (db / "labels640.csv").rename(db / "labels>640.csv")
    run_prepare("flive", tmp_path / "flive", tmp_path / "out")
    table = check_prepared("flive", tmp_path / "out", columns=layout.columns, rows=layout.rows, official=True)
    assert split_from_column(table, "official_split", "csv")["val"] == flive.VALID


def test_flive_missing_images_are_reported_and_left_out(tmp_path, caplog):
    root = tmp_path / "flive"
    layout = flive.write(root)
    (root / "database" / "EE371R" / "rq59.jpg").unlink()
    report = run_prepare("flive", root, tmp_path / "out")
    assert report.missing == ["EE371R/rq59.jpg"] and report.rows == layout.rows - 1
    assert "1 of 16 listed images are missing" in caplog.text and "EE371R/rq59.jpg" in caplog.text
    table = check_prepared("flive", tmp_path / "out", columns=layout.columns, rows=layout.rows - 1,
                           official=True)
    assert len(split_from_column(table, "official_split", "csv")["val"]) == len(flive.VALID) - 1


def test_flive_wrong_root_names_the_expected_file(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(DataError, match=r"expected 'database/labels_image.csv' under --root .*elsewhere"):
        run_prepare("flive", tmp_path / "elsewhere", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_flive_bad_is_valid_names_the_line(tmp_path):
    root = tmp_path / "flive"
    flive.write(root)
    path = root / "database" / "labels=640_padded.csv"
    lines = path.read_text().splitlines()
    lines[2] = lines[2].rsplit(",", 1)[0] + ",maybe"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"labels=640_padded.csv' line 3: is_valid 'maybe'"):
        run_prepare("flive", root, tmp_path / "out")


REAL = Path(__file__).resolve().parents[2] / "fixtures" / "real" / "flive"


def test_flive_real_label_files(tmp_path):
    """The real labels_image.csv and labels640.csv excerpts (tests/fixtures/real/flive); the padded list,
    not in a public excerpt, is written in its columns: the first two other images validate."""
    db = tmp_path / "flive" / "database"
    db.mkdir(parents=True)
    for name in ("labels_image.csv", "labels640.csv"):
        shutil.copy(REAL / name, db / name)
    names = pd.read_csv(db / "labels_image.csv")["name"].tolist()
    test = pd.read_csv(db / "labels640.csv")["name_image"].tolist()
    train_val = [n for n in names if n not in test]
    pd.DataFrame({"name_image": train_val, "is_valid": [i < 2 for i in range(len(train_val))]}).to_csv(
        db / "labels=640_padded.csv", index=False)
    for k, name in enumerate(names):
        tiny_image(db / name, seed=k)
    run_prepare("flive", tmp_path / "flive", tmp_path / "out", few_labels=())
    table = check_prepared("flive", tmp_path / "out", columns=flive.COLUMNS, rows=12, official=True, few_labels=())
    assert table["img_name"].tolist() == names
    mos = dict(zip(table["img_name"], table["mos"].astype(float)))
    assert mos["blur_dataset/motion0044.jpg"] == 75.44372347614072 and mos["blur_dataset/motion0091.jpg"] == 0.0
    assert mos["EE371R/rq59.jpg"] == 65.92692771874236
    split = split_from_column(table, "official_split", "csv")
    assert [names[i] for i in split["test"]] == [n for n in names if n in test] and len(split["test"]) == 3
    assert [names[i] for i in split["val"]] == train_val[:2]
