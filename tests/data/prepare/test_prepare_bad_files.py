"""Annotation files a user should not have handed us (pyiqa.data.prepare.user_files and the pipeline's
checks): each is one DataError naming the file and what is wrong, nothing is written; UTF-16 and Latin-1
text is read and the encoding logged. Real files on disk; the command line as a subprocess."""
from __future__ import annotations

import csv
import os
import re

import pytest

from helpers import REPO, run_script
from layouts import agiqa3k, ava, kadid10k, tid2013
from prepare_checks import check_prepared, run_prepare
from pyiqa.data.prepare.user_files import MAX_TEXT_BYTES, read_text, size_text
from pyiqa.utils.errors import DataError

SCRIPT = str(REPO / "scripts" / "prepare_dataset.py")


def _agiqa3k(tmp_path):
    root = tmp_path / "agiqa3k"
    agiqa3k.write(root, per_generator=1)
    return root, root / "data.csv"


def _set_cell(path, row: int, column: int, value: str) -> None:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    rows[row][column] = value
    with open(path, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


def _expect_error(tmp_path, root, pattern: str) -> None:
    with pytest.raises(DataError, match=pattern):
        run_prepare("agiqa3k", root, tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("edit, pattern", [
    (lambda p: p.write_bytes(b""), r"data.csv' is empty \(0 bytes\)"),
    (lambda p: p.write_text(p.read_text().splitlines()[0] + "\n"), r"data.csv' has no rows \(only a header\)"),
    (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + os.urandom(64)),
     r"data.csv' holds binary data \(a NUL byte at offset 8\); expected a text file"),
    (lambda p: p.write_text(p.read_text().replace("statue", '"statue', 1)),
     r"data.csv' line 2: the quoting is broken"),
    (lambda p: p.write_text(p.read_text() + '"never closed,1\n'),
     r"data.csv' line 8: a quote \(\"\) opens a cell that is never closed"),
    (lambda p: p.write_text(p.read_text().replace("statue", "x" * 200_000, 1)),
     r"data.csv' line 2: a cell is longer than 131072 characters, the cap for one cell"),
], ids=["empty", "header-only", "binary", "broken-quote", "unclosed-quote", "huge-cell"])
def test_unreadable_table_is_one_error_naming_the_file(tmp_path, edit, pattern):
    root, path = _agiqa3k(tmp_path)
    edit(path)
    _expect_error(tmp_path, root, rf"AGIQA-3K annotations '.*{pattern}")


@pytest.mark.parametrize("target", ["/dev/zero", "fifo"])
def test_special_file_is_refused_before_reading(tmp_path, target):
    root, path = _agiqa3k(tmp_path)
    path.unlink()
    if target == "fifo":
        os.mkfifo(path)  # opening it for reading would block forever
        kind = "a FIFO"
    else:
        path.symlink_to(target)
        kind = "a device"
    _expect_error(tmp_path, root, rf"'data.csv' under --root '.*data.csv' is {kind}; expected a regular file")


def test_size_cap_is_said(tmp_path):
    path = tmp_path / "big.csv"
    path.write_bytes(b"a,b\n" + b"1,2\n" * 100)
    with pytest.raises(DataError, match=r"Table '.*big.csv' is larger than 100 bytes, the cap for this kind"):
        read_text(path, "Table", max_bytes=100)  # the preparers' cap (512 MiB) is too big to write here
    assert read_text(path, "Table", max_bytes=404).startswith("a,b")
    assert size_text(MAX_TEXT_BYTES) == "512 MiB"


@pytest.mark.parametrize("encoding, bom", [("utf-16", True), ("utf-16-le", False), ("latin-1", False)])
def test_utf16_and_latin1_are_read_and_logged(tmp_path, caplog, encoding, bom):
    root, path = _agiqa3k(tmp_path)
    text = path.read_text().replace("statue of a man", "statue of a café man")
    path.write_bytes(text.encode(encoding))
    run_prepare("agiqa3k", root, tmp_path / "out")
    table = check_prepared("agiqa3k", tmp_path / "out", columns=agiqa3k.COLUMNS, rows=6)
    assert table["prompt"].iloc[0] == "statue of a café man"
    shown = "LATIN-1" if encoding == "latin-1" else encoding.upper()
    assert ("read it as Latin-1" if encoding == "latin-1" else f"is {shown} text, not UTF-8") in caplog.text


@pytest.mark.parametrize("name, why", [
    ("../../outside.jpg", r"climbs out of the image folder \('..'\)"),
    ("file/../../x.jpg", r"climbs out of the image folder"),
    ("/etc/passwd", r"is an absolute path; names must be relative to the image folder"),
    ("C:\\images\\a.jpg", r"is an absolute path"),
    ("x" * 2000, r"is longer than 1024 characters"),
])
def test_image_name_outside_its_root_names_row_and_name(tmp_path, name, why):
    root, path = _agiqa3k(tmp_path)
    (tmp_path / "outside.jpg").write_bytes(b"not an image")  # present, so nothing else would refuse it
    _set_cell(path, 3, 0, name)
    shown = name if len(name) < 120 else "x" * 60
    _expect_error(tmp_path, root, rf"AGIQA-3K: '.*data.csv' line 4: image name '{re.escape(shown)}.*' {why}")

@pytest.mark.parametrize("name, shown, why", [
    ("", "", r"is empty; expected a file name"),
    ("a\nb.jpg", r"a\\nb.jpg", r"holds the control character '\\n' \(U\+000A\)"),
    ("a\tb.jpg", r"a\\tb.jpg", r"holds the control character '\\t' \(U\+0009\)"),
])
def test_empty_or_control_character_name_is_refused_with_its_line(tmp_path, name, shown, why):
    # counted as a missing image before: the run went on without it and exited 0
    root, path = _agiqa3k(tmp_path)
    _set_cell(path, 3, 0, name)
    _expect_error(tmp_path, root, rf"AGIQA-3K: '.*data.csv' line 4: image name '{shown}' {why}")


def test_cli_newline_in_a_name_is_one_error_line(tmp_path):
    root, path = _agiqa3k(tmp_path)
    _set_cell(path, 2, 0, "a\nb.jpg")  # csv.writer quotes it: the cell really holds a newline
    proc = run_script([SCRIPT, "agiqa3k", "--root", str(root), "--out", str(tmp_path / "out")], cwd=tmp_path,
                      check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    error = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert error == [f"error: AGIQA-3K: '{path}' line 3: image name 'a\\nb.jpg' holds the control character "
                     "'\\n' (U+000A); expected a file name (a newline in a name is usually a quote left open "
                     "in the cell)"]
    assert not (tmp_path / "out").exists()


def test_reference_name_outside_its_root_is_refused(tmp_path):
    root = tmp_path / "kadid10k"
    kadid10k.write(root)
    _set_cell(root / "dmos.csv", 2, 1, "../../etc/ref.png")
    with pytest.raises(DataError, match=r"KADID-10k: row 2 of the annotations: image name '../../etc/ref.png' climbs out"):
        run_prepare("kadid10k", root, tmp_path / "out")


@pytest.mark.parametrize("value, pattern", [
    ("50", r"mos 50 is outside the dataset's scale \[0, 5\] \(1 such value\(s\) in all, from .* to 50\)"),
    ("1e309", r"mos_quality '1e309' is infinite"),
    ("NaN", r"mos_quality 'NaN' is not a number"),
    ("-50", r"mos_quality '-50' is negative"),
])
def test_label_that_cannot_be_right_names_file_row_value_and_range(tmp_path, value, pattern):
    root, path = _agiqa3k(tmp_path)
    _set_cell(path, 2, 5, value)
    _expect_error(tmp_path, root, rf"AGIQA-3K: '.*data.csv' line 3: {pattern}")


def test_text_list_readers_refuse_binary_and_empty(tmp_path):
    root = tmp_path / "tid2013"
    tid2013.write(root)
    (root / "mos_std.txt").write_bytes(b"\x00\x01\x02" * 10)
    with pytest.raises(DataError, match=r"TID2013 annotations '.*mos_std.txt' holds binary data"):
        run_prepare("tid2013", root, tmp_path / "out")
    root = tmp_path / "ava"
    ava.write(root)
    (root / "AVA.txt").write_bytes(b"   \n")
    with pytest.raises(DataError, match=r"AVA annotations .*AVA.txt' is empty"):
        run_prepare("ava", root, tmp_path / "out")


@pytest.mark.parametrize("case", ["binary", "escape", "dev-zero"])
def test_command_line_prints_one_line_and_exits_2(tmp_path, case):
    root, path = _agiqa3k(tmp_path)
    if case == "binary":
        path.write_bytes(os.urandom(2000) + b"\x00")
    elif case == "escape":
        _set_cell(path, 1, 0, "../../outside.jpg")
    else:
        path.unlink()
        path.symlink_to("/dev/zero")
    proc = run_script([SCRIPT, "agiqa3k", "--root", str(root), "--out", str(tmp_path / "out")],
                      cwd=tmp_path, check=False, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert proc.stderr.strip().splitlines()[-1].startswith("error: AGIQA-3K")
    assert not (tmp_path / "out").exists()
