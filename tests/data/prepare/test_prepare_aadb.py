"""AADB preparer on a fixture in its published layout."""
from __future__ import annotations

from pathlib import Path

import pytest

from layouts import aadb, tiny_image
from prepare_checks import check_prepared, check_rerun_is_noop, run_prepare
from pyiqa.data.meta_info import read_split_pickle, split_from_column
from pyiqa.data.prepare import split_pickle_name
from pyiqa.utils.errors import DataError


def test_aadb_csv_splits_and_rerun(tmp_path):
    layout = aadb.write(tmp_path / "aadb")
    run_prepare("aadb", tmp_path / "aadb", tmp_path / "out")
    table = check_prepared("aadb", tmp_path / "out", columns=layout.columns, rows=layout.rows,
                           official=layout.official)
    first = table.iloc[0]
    assert (first["img_name"], first["mos"]) == (aadb.path(0), 0.025)
    assert (first["BalacingElements"], first["ColorHarmony"], first["VividColor"]) == ("-0.4", "0.2", "-1.0")
    assert (table["img_name"][10], table["mos"][10]) == (aadb.path(10), 0.675)  # first validation line
    assert (table["img_name"][13], table["mos"][13]) == (aadb.path(13), 0.775)  # first TestNew line
    assert table["img_name"][13] == f"AADB_newtest_originalSize/0.775_{aadb.image_name(13)}"
    split = split_from_column(table, "official_split", "csv")
    assert split == {"train": list(range(10)), "val": [10, 11, 12], "test": [13, 14, 15, 16]}
    assert read_split_pickle(tmp_path / "out" / split_pickle_name("aadb", "official"), 1) == split
    check_rerun_is_noop("aadb", tmp_path / "aadb", tmp_path / "out")


def test_aadb_missing_images_are_reported_and_left_out(tmp_path, caplog):
    root = tmp_path / "aadb"
    layout = aadb.write(root)
    missing = aadb.path(11)
    (root / missing).unlink()
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
    with pytest.raises(DataError, match=r"imgListValidationRegression_score.txt' line 2 \(farm.*\): "
                                        r"value 'n/a' is not a number"):
        run_prepare("aadb", root, tmp_path / "out")


def test_aadb_without_attribute_lists_keeps_the_score(tmp_path):
    root = tmp_path / "aadb"
    layout = aadb.write(root)
    for path in (root / "imgListFiles_label").glob("*Regression_DoF.txt"):
        path.unlink()
    run_prepare("aadb", root, tmp_path / "out")
    columns = [c for c in layout.columns if c != "DoF"]
    check_prepared("aadb", tmp_path / "out", columns=columns, rows=layout.rows, official=True)


REAL = Path(__file__).resolve().parents[2] / "fixtures" / "real" / "aadb"


def test_aadb_real_names_and_scores(tmp_path):
    """The authors' first train and test names and scores (AADBinfo.mat, tests/fixtures/real/aadb) in
    the lists; test images under their plain name in AADB_newtest_originalSize/ and one only in the
    training folder; validation lines made up (AADBinfo.mat has none)."""
    rows = [line.split() for line in (REAL / "AADBinfo_excerpt.txt").read_text().splitlines()[1:]]
    train = [(n, s) for part, n, s in rows if part == "train"]
    test = [(n, s) for part, n, s in rows if part == "test"]
    val = [(aadb.image_name(k), "0.5") for k in range(2)]
    root = tmp_path / "aadb"
    labels = root / "imgListFiles_label"
    labels.mkdir(parents=True)
    for part, lines in (("Train", train), ("Validation", val), ("TestNew", test)):
        (labels / f"imgList{part}Regression_score.txt").write_text("".join(f"{n} {s}\n" for n, s in lines))
    for k, (name, _) in enumerate(train + val + test[1:]):
        folder = "AADB_newtest_originalSize" if (name, _) in test else "datasetImages_originalSize"
        tiny_image(root / folder / name, seed=k)
    tiny_image(root / "datasetImages_originalSize" / test[0][0], seed=99)
    run_prepare("aadb", root, tmp_path / "out", few_labels=())
    table = check_prepared("aadb", tmp_path / "out", columns=["img_name", "mos"], rows=10, official=True,
                           few_labels=())
    assert table["img_name"].tolist() == [f"datasetImages_originalSize/{n}" for n, _ in train + val + test[:1]] \
        + [f"AADB_newtest_originalSize/{n}" for n, _ in test[1:]]
    assert table["mos"].astype(float).tolist() == [0.3, 0.7, 0.4, 0.6, 0.5, 0.5, 0.65, 0.6, 0.5, 0.35]
    split = split_from_column(table, "official_split", "csv")
    assert {k: len(v) for k, v in split.items()} == {"train": 4, "val": 2, "test": 4}
