"""AVA preparer on a fixture in its published layout."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from layouts import ava, tiny_image
from prepare_checks import check_prepared, check_rerun_is_noop, run_prepare
from pyiqa.data.meta_info import read_split_pickle
from pyiqa.data.prepare import split_pickle_name
from pyiqa.utils.errors import DataError


def test_ava_csv_splits_and_rerun(tmp_path):
    layout = ava.write(tmp_path / "ava")
    run_prepare("ava", tmp_path / "ava", tmp_path / "out")
    table = check_prepared("ava", tmp_path / "out", columns=layout.columns, rows=layout.rows,
                           official=layout.official)
    first, second = table.iloc[0], table.iloc[1]
    assert first["img_name"] == "953619.jpg"
    assert first["MOS"] == pytest.approx(616 / 92)  # votes 0,4,8,12,5,9,13,17,10,14 for scores 1..10
    assert [first[f"c{i}"] for i in range(1, 11)] == ["0", "4", "8", "12", "5", "9", "13", "17", "10", "14"]
    assert (first["semantic_tag1"], first["semantic_tag2"], first["challenge_id"]) == ("0", "21", "1396")
    assert (second["img_name"], second["semantic_tag1"], second["semantic_tag2"]) == ("953958.jpg", "3", "0")
    # official split: generic_test.jpgl -> 2; one seeded training image (5% of 9, rounded up) -> 1
    codes = dict(zip(table["img_name"], table["official_split"]))
    assert {n for n, c in codes.items() if c == "2"} == {f"{i}.jpg" for i in ava.TEST_IDS}
    assert list(codes.values()).count("1") == 1
    official = read_split_pickle(tmp_path / "out" / split_pickle_name("ava", "official"), 1)
    assert {k: len(v) for k, v in official.items()} == {"train": 8, "val": 1, "test": 3}
    assert official["test"] == [i for i, c in enumerate(table["official_split"]) if c == "2"]
    check_rerun_is_noop("ava", tmp_path / "ava", tmp_path / "out")


def test_ava_missing_images_are_reported_and_left_out(tmp_path, caplog):
    root = tmp_path / "ava"
    layout = ava.write(root)
    (root / "images" / "953980.jpg").unlink()
    report = run_prepare("ava", root, tmp_path / "out")
    assert report.missing == ["953980.jpg"] and report.rows == layout.rows - 1
    assert "1 of 12 listed images are missing" in caplog.text and "953980.jpg" in caplog.text
    table = check_prepared("ava", tmp_path / "out", columns=layout.columns, rows=layout.rows - 1,
                           official=True)
    assert "953980.jpg" not in set(table["img_name"])


def test_ava_wrong_root_names_the_expected_file(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(DataError, match=r"expected 'AVA.txt' under --root .*elsewhere"):
        run_prepare("ava", tmp_path / "elsewhere", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_ava_non_integer_vote_names_the_line(tmp_path):
    root = tmp_path / "ava"
    ava.write(root)
    lines = (root / "AVA.txt").read_text().splitlines()
    fields = lines[2].split()
    fields[5] = "x"  # votes for score 4
    lines[2] = " ".join(fields)
    (root / "AVA.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"AVA.txt' line 3: c4 'x' is not a non-negative integer"):
        run_prepare("ava", root, tmp_path / "out")


def test_ava_line_without_votes_is_left_out(tmp_path, caplog):
    root = tmp_path / "ava"
    layout = ava.write(root)
    lines = (root / "AVA.txt").read_text().splitlines()
    fields = lines[4].split()
    lines[4] = " ".join(fields[:2] + ["0"] * 10 + fields[12:])
    (root / "AVA.txt").write_text("\n".join(lines) + "\n")
    report = run_prepare("ava", root, tmp_path / "out")
    assert report.rows == layout.rows - 1 and "have no votes and are left out: lines [5]" in caplog.text


REAL = Path(__file__).resolve().parents[2] / "fixtures" / "real" / "ava"


def test_ava_real_line_and_real_lists(tmp_path):
    """AVA.txt's real first line and the real first ids of both lists (tests/fixtures/real/ava); the
    vote counts of the listed ids' lines are made up (their real lines are not in a public excerpt)."""
    root = tmp_path / "ava"
    lists = root / "aesthetics_image_lists"
    lists.mkdir(parents=True)
    for name in ("generic_test.jpgl", "generic_ls_train.jpgl"):
        shutil.copy(REAL / name, lists / name)
    test_ids = (REAL / "generic_test.jpgl").read_text().split()
    ls_train_ids = (REAL / "generic_ls_train.jpgl").read_text().split()
    lines = (REAL / "AVA.txt").read_text().splitlines()
    for k, image_id in enumerate(test_ids + ls_train_ids, start=2):
        lines.append(" ".join(map(str, [k, image_id] + ava.votes(k) + [0, 0, 1396])))
    (root / "AVA.txt").write_text("\n".join(lines) + "\n")
    for k, line in enumerate(lines):
        tiny_image(root / "images" / f"{line.split()[1]}.jpg", seed=k)
    run_prepare("ava", root, tmp_path / "out", few_labels=())
    table = check_prepared("ava", tmp_path / "out", columns=ava.COLUMNS, rows=11, official=True, few_labels=())
    first = table.iloc[0]
    assert first["img_name"] == "953619.jpg"
    assert float(first["MOS"]) == pytest.approx(699 / 124)  # votes 0 1 5 17 38 36 15 6 5 1 for 1..10
    assert [first[f"c{i}"] for i in range(1, 11)] == ["0", "1", "5", "17", "38", "36", "15", "6", "5", "1"]
    assert (first["semantic_tag1"], first["semantic_tag2"], first["challenge_id"]) == ("1", "22", "1396")
    codes = dict(zip(table["img_name"], table["official_split"]))
    assert {n for n, c in codes.items() if c == "2"} == {f"{i}.jpg" for i in test_ids}
    assert all(codes[f"{i}.jpg"] in ("0", "1") for i in ls_train_ids)  # the ls_train list is not the test
