"""TID2013 preparer on a fixture in its published layout."""
from __future__ import annotations

import pytest

from layouts import tid2013
from prepare_checks import check_prepared, check_rerun_is_noop, run_prepare
from pyiqa.utils.errors import DataError


def test_tid2013_csv_splits_and_rerun(tmp_path):
    layout = tid2013.write(tmp_path / "tid2013")
    run_prepare("tid2013", tmp_path / "tid2013", tmp_path / "out")
    table = check_prepared("tid2013", tmp_path / "out", columns=layout.columns, rows=layout.rows,
                           reference=layout.reference)
    first = table.iloc[0]
    assert (first["ref_name"], first["dist_name"], first["mos"], first["std"]) == \
        ("I01.BMP", "I01_01_1.bmp", 5.36, "0.1")
    row = table[table["dist_name"] == "i25_11_2.bmp"].iloc[0]
    assert (row["ref_name"], row["mos"], row["std"], row["distortion_type"], row["distortion_level"]) == \
        ("i25.bmp", 4.0, "0.10023", "11", "2")
    assert "I03_11_1.BMP" in set(table["dist_name"])  # the release's spelling, kept
    check_rerun_is_noop("tid2013", tmp_path / "tid2013", tmp_path / "out")


def test_tid2013_name_differing_only_in_case_takes_the_spelling_on_disk(tmp_path):
    root = tmp_path / "tid2013"
    layout = tid2013.write(root)
    (root / "distorted_images" / "I02_01_1.bmp").rename(root / "distorted_images" / "i02_01_1.bmp")
    report = run_prepare("tid2013", root, tmp_path / "out")
    assert report.missing == [] and report.rows == layout.rows
    table = check_prepared("tid2013", tmp_path / "out", columns=layout.columns, rows=layout.rows,
                           reference=layout.reference)
    assert "i02_01_1.bmp" in set(table["dist_name"]) and "I02_01_1.bmp" not in set(table["dist_name"])


def test_tid2013_missing_images_are_reported_and_left_out(tmp_path, caplog):
    root = tmp_path / "tid2013"
    layout = tid2013.write(root)
    (root / "distorted_images" / "i04_11_2.bmp").unlink()
    report = run_prepare("tid2013", root, tmp_path / "out")
    assert report.missing == ["i04_11_2.bmp"] and report.rows == layout.rows - 1
    assert f"1 of {layout.rows} listed images are missing" in caplog.text and "i04_11_2.bmp" in caplog.text
    check_prepared("tid2013", tmp_path / "out", columns=layout.columns, rows=layout.rows - 1,
                   reference=layout.reference)


def test_tid2013_wrong_root_names_the_expected_file(tmp_path):
    (tmp_path / "elsewhere").mkdir()
    with pytest.raises(DataError, match=r"expected 'mos_with_names.txt' under --root .*elsewhere"):
        run_prepare("tid2013", tmp_path / "elsewhere", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_tid2013_malformed_lines_name_file_and_line(tmp_path):
    root = tmp_path / "tid2013"
    tid2013.write(root)
    lines = (root / "mos_with_names.txt").read_text().splitlines()
    lines[2] = "five i01_11_1.bmp"
    (root / "mos_with_names.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"mos_with_names.txt' line 3: expected '<MOS> <image name>'"):
        run_prepare("tid2013", root, tmp_path / "out")
    tid2013.write(root)
    (root / "mos_std.txt").write_text("\n".join((root / "mos_std.txt").read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(DataError, match=r"mos_std.txt' has 23 values for the 24 images"):
        run_prepare("tid2013", root, tmp_path / "out")
    assert not (tmp_path / "out").exists()
