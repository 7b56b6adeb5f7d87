"""TID2013 preparer on a fixture in its published layout."""
from __future__ import annotations

import pandas as pd
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
    lines[2] = "i01_11_1.bmp"
    (root / "mos_with_names.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=r"mos_with_names.txt' line 3: expected '<MOS> <image name>'"):
        run_prepare("tid2013", root, tmp_path / "out")
    tid2013.write(root)
    (root / "mos_std.txt").write_text("\n".join((root / "mos_std.txt").read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(DataError, match=r"mos_std.txt' has 23 values for the 24 images"):
        run_prepare("tid2013", root, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_tid2013_on_the_real_files_equals_iqa_pytorchs_meta_csv(tmp_path):
    """The real first 60 lines of mos_with_names.txt / mos_std.txt (CRLF) give IQA-PyTorch's published rows."""
    layout = tid2013.write_real(tmp_path / "tid2013")
    report = run_prepare("tid2013", tmp_path / "tid2013", tmp_path / "out")
    assert report.rows == 60 and report.missing == []
    table = check_prepared("tid2013", tmp_path / "out", columns=layout.columns, rows=60, reference="ref_name")
    published = pd.read_csv(tid2013.REAL / "tid2013" / "meta_info_TID2013Dataset.csv", dtype=str)
    assert table[["ref_name", "dist_name"]].equals(published[["ref_name", "dist_name"]])
    for column in ("mos", "std"):
        assert table[column].astype(float).tolist() == published[column].astype(float).tolist()
    assert (table.iloc[50]["dist_name"], table.iloc[50]["mos"]) == ("I01_11_1.BMP", 5.91429)  # the release's case
    assert table["distortion_type"].astype(int).max() == 12


@pytest.mark.parametrize("cell, message", [
    ("five", "MOS 'five' is not a number"), ("inf", "MOS 'inf' is infinite"),
    ("-0.5", "MOS '-0.5' is negative")])
def test_tid2013_bad_mos_cell_names_file_line_and_value(tmp_path, cell, message):
    root = tmp_path / "tid2013"
    tid2013.write_real(root)
    lines = (root / "mos_with_names.txt").read_text().splitlines()
    lines[6] = f"{cell} {lines[6].split()[1]}"
    (root / "mos_with_names.txt").write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=rf"mos_with_names.txt' line 7: {message}"):
        run_prepare("tid2013", root, tmp_path / "out")
    (root / "mos_with_names.txt").write_bytes((tid2013.REAL / "tid2013" / "mos_with_names.txt").read_bytes())
    std = (root / "mos_std.txt").read_text().splitlines()
    std[3] = cell
    (root / "mos_std.txt").write_text("\n".join(std) + "\n")
    with pytest.raises(DataError, match=rf"mos_std.txt' line 4: {message.replace('MOS', 'std')}"):
        run_prepare("tid2013", root, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_tid2013_repeated_name_same_scores_kept_once_different_scores_refused(tmp_path, caplog):
    root = tmp_path / "tid2013"
    tid2013.write_real(root)
    names = (root / "mos_with_names.txt").read_text().splitlines()
    stds = (root / "mos_std.txt").read_text().splitlines()
    (root / "mos_with_names.txt").write_text("\n".join(names + [names[4]]) + "\n")
    (root / "mos_std.txt").write_text("\n".join(stds + [stds[4]]) + "\n")
    report = run_prepare("tid2013", root, tmp_path / "out")
    assert report.rows == 60
    assert "1 image(s) listed more than once with the same scores, kept once: ['i01_01_5.bmp']" in caplog.text
    (root / "mos_with_names.txt").write_text("\n".join(names + ["3.0 i01_01_5.bmp"]) + "\n")
    with pytest.raises(DataError, match=r"image 'i01_01_5.bmp' is listed twice with different mos: "
                                        r"3.86486 \(line 5\) and 3.0 \(line 61\)"):
        run_prepare("tid2013", root, tmp_path / "out2")
