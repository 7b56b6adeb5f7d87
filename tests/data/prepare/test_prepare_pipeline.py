"""What every preparer does with a real user's download (pyiqa.data.prepare.pipeline / .locate): --root
one level off, images in another folder or letter case, an image listed twice, bad MOS cells."""
from __future__ import annotations

import csv
import shutil

import pytest

from layouts import agiqa3k, ava, flive, spaq
from prepare_checks import check_prepared, run_prepare
from pyiqa.data.meta_info import split_from_column
from pyiqa.utils.errors import DataError


def test_root_one_level_too_deep_is_the_image_folder(tmp_path, caplog):
    root = tmp_path / "spaq"
    layout = spaq.write(root, images=6, extras=False)
    report = run_prepare("spaq", root / "TestImage", tmp_path / "out")
    assert report.dataroot == root / "TestImage" and report.rows == layout.rows
    assert f"--root '{root / 'TestImage'}' does not hold" in caplog.text and f"using '{root}'" in caplog.text


def test_root_one_level_too_shallow_holds_the_unpacked_folder(tmp_path, caplog):
    root = tmp_path / "downloads" / "SPAQ zip" / "SPAQ"
    layout = spaq.write(root, images=6, extras=False)
    report = run_prepare("spaq", tmp_path / "downloads", tmp_path / "out")
    assert report.dataroot == root / "TestImage" and report.rows == layout.rows
    check_prepared("spaq", tmp_path / "out", columns=layout.columns, rows=layout.rows)


def test_two_candidate_folders_are_named(tmp_path):
    for copy in ("a", "b"):
        agiqa3k.write(tmp_path / copy / "agiqa3k", per_generator=1)
    (tmp_path / "a" / "agiqa3k").rename(tmp_path / "first")
    (tmp_path / "b" / "agiqa3k").rename(tmp_path / "second")
    with pytest.raises(DataError, match=r"2 folders below it do: \[.*first', .*second'\]. Pass the one to use"):
        run_prepare("agiqa3k", tmp_path, tmp_path / "out")


def test_nothing_found_names_the_expected_file_and_what_root_holds(tmp_path):
    (tmp_path / "wrong" / "photos").mkdir(parents=True)
    (tmp_path / "wrong" / "notes.txt").write_text("x")
    with pytest.raises(DataError, match=r"expected 'AVA.txt' under --root .*wrong' .*it holds: notes.txt, photos/"):
        run_prepare("ava", tmp_path / "wrong", tmp_path / "out")


def test_upper_case_extensions_are_found_and_named_as_on_disk(tmp_path, caplog):
    root = tmp_path / "ava"
    layout = ava.write(root)
    for image_id in ava.IDS[:5]:
        (root / "images" / f"{image_id}.jpg").rename(root / "images" / f"{image_id}.JPG")
    report = run_prepare("ava", root, tmp_path / "out")
    assert report.missing == [] and report.rows == layout.rows
    table = check_prepared("ava", tmp_path / "out", columns=layout.columns, rows=layout.rows, official=True)
    assert table["img_name"].tolist()[:6] == [f"{i}.JPG" for i in ava.IDS[:5]] + [f"{ava.IDS[5]}.jpg"]
    assert "5 image(s) are on disk with other letter case than listed" in caplog.text


def test_images_in_the_archives_own_sub_folder(tmp_path, caplog):
    root = tmp_path / "spaq"
    layout = spaq.write(root, images=6, extras=False)
    inner = root / "TestImage" / "TestImage"
    shutil.move(str(root / "TestImage"), str(tmp_path / "moved"))
    shutil.move(str(tmp_path / "moved"), str(inner))
    report = run_prepare("spaq", root, tmp_path / "out")
    assert report.dataroot == inner and report.rows == layout.rows
    assert f"the images are under '{inner}'" in caplog.text


def _edit_data_csv(root, edit) -> None:
    """Rewrite AGIQA-3K's data.csv through ``edit(rows)`` (rows as lists of cells, header first)."""
    path = root / "data.csv"
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    edit(rows)
    with open(path, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


def test_image_listed_twice_with_the_same_mos_is_kept_once(tmp_path, caplog):
    root = tmp_path / "agiqa3k"
    layout = agiqa3k.write(root)
    _edit_data_csv(root, lambda rows: rows.append(list(rows[2])))
    report = run_prepare("agiqa3k", root, tmp_path / "out")
    assert report.rows == layout.rows
    assert "1 image(s) listed more than once with the same scores, kept once: ['AttnGAN_normal_001.jpg']" \
        in caplog.text


def test_image_listed_twice_with_different_mos_names_both_rows(tmp_path):
    root = tmp_path / "agiqa3k"
    agiqa3k.write(root)
    _edit_data_csv(root, lambda rows: rows.append(rows[2][:5] + ["4.25"] + rows[2][6:]))
    with pytest.raises(DataError, match=r"image 'AttnGAN_normal_001.jpg' is listed twice with different mos: "
                                        r"0.8 \(.*data.csv' line 3\) and 4.25 \(.*data.csv' line 14\)"):
        run_prepare("agiqa3k", root, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("cell, reason", [("", "empty"), ("good", "not a number"), ("inf", "infinite"),
                                          ("-0.3", "negative")])
def test_bad_mos_cell_names_file_row_and_value(tmp_path, cell, reason):
    root = tmp_path / "agiqa3k"
    agiqa3k.write(root)
    _edit_data_csv(root, lambda rows: rows[4].__setitem__(5, cell))
    with pytest.raises(DataError, match=rf"AGIQA-3K: '.*data.csv' line 5: mos_quality '{cell}' is {reason}"):
        run_prepare("agiqa3k", root, tmp_path / "out")


def test_repeat_dropped_keeps_the_official_split_aligned(tmp_path, caplog):
    root = tmp_path / "flive"
    layout = flive.write(root)
    path = root / "database" / "labels_image.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:4] + [lines[1]] + lines[4:]) + "\n")  # image 0 (a test image) again
    run_prepare("flive", root, tmp_path / "out")
    table = check_prepared("flive", tmp_path / "out", columns=layout.columns, rows=layout.rows, official=True)
    split = split_from_column(table, "official_split", "csv")
    assert split["test"] == flive.TEST and split["val"] == flive.VALID
    assert "kept once: ['voc_emotic_ava/EMOTIC__cwpvmtkuw83q2or3za.jpg']" in caplog.text
