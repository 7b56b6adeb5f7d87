"""Reading a file a user hands us (annotation table, comment file, caption list), and checking the image
names it lists, so that a wrong file is one clear error naming it instead of a traceback, a hang or a
silently wrong dataset.

* Only regular files are read: a FIFO, a device or a link to ``/dev/zero`` would block or never end.
* Sizes are capped (:data:`MAX_TEXT_BYTES`, said in the error): the largest published annotation file
  (AVA.txt, 255k rows) is about 20 MB, a million-row CSV about 100 MB.
* Text is UTF-8 (a BOM is dropped). UTF-16 with a BOM, or without one where every other byte is 0
  (unambiguous), is decoded and logged. Other bytes that are not UTF-8 are read as Latin-1 (every
  byte is a character, and older annotation files use it) and logged. A NUL byte anywhere else means
  the file is binary (an image, a workbook): refused.
* CSV tables are first walked with Python's strict csv reader: broken quoting (a quote opened and never
  closed, or closed in the middle of a cell, swallows the following rows into one cell) and a cell
  longer than the csv module's field limit (128 KiB; no annotation cell comes near it) are refused with
  the line.
* Image names stay inside the folder they are relative to: an absolute name or one whose ``..`` parts
  climb out of it is refused with the row and the name (``allow_absolute`` lets a user who keeps images
  elsewhere list absolute paths; ``..`` never escapes); so is an empty name or one holding a control
  character (a newline in a name is a quote left open).
"""
from __future__ import annotations

import codecs
import csv
import io
import logging
import os
import stat
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import pandas as pd

from ...utils.errors import DataError
from ...utils.image_names import MAX_NAME_CHARS, name_problem, shown  # noqa: F401  (re-exported)

logger = logging.getLogger(__name__)

MAX_TEXT_BYTES = 512 * 2 ** 20


def regular_file(path: os.PathLike, what: str) -> Path:
    """``path`` when it is a regular file (links followed); DataError saying what it is otherwise."""
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise DataError(f"{what} '{path}' does not exist") from None
    except OSError as exc:
        raise DataError(f"{what} '{path}' cannot be read: {exc.strerror or exc}") from exc
    if not stat.S_ISREG(mode):
        kind = "a folder" if stat.S_ISDIR(mode) else "a FIFO" if stat.S_ISFIFO(mode) else \
            "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "a socket" if stat.S_ISSOCK(mode) \
            else "not a regular file"
        raise DataError(f"{what} '{path}' is {kind}; expected a regular file")
    return path


def read_bytes(path: os.PathLike, what: str, max_bytes: int = MAX_TEXT_BYTES) -> bytes:
    """The bytes of regular file ``path``, at most ``max_bytes`` (DataError naming the cap beyond)."""
    path = regular_file(path, what)
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except OSError as exc:
        raise DataError(f"{what} '{path}' cannot be read: {exc.strerror or exc}") from exc
    if len(data) > max_bytes:
        raise DataError(f"{what} '{path}' is larger than {size_text(max_bytes)}, the cap for this kind of "
                        f"file; is it the right file?")
    return data


def size_text(n: int) -> str:
    """``n`` bytes for a message: '512 MiB', '64 KiB' or '100 bytes'."""
    for unit, scale in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if n >= scale:
            return f"{n / scale:g} {unit}"
    return f"{n} bytes"


def decode_text(data: bytes, path: os.PathLike, what: str, encoding: str = "utf-8") -> str:
    """``data`` as text (see the module docstring for the encodings accepted); DataError for binary."""
    for bom, name in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"),
                      (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            return _decode(data, name, path, what, logged=name != "utf-8-sig")
    guessed = _utf16_without_bom(data)
    if guessed:
        return _decode(data, guessed, path, what, logged=True)
    if b"\x00" in data:
        raise DataError(f"{what} '{path}' holds binary data (a NUL byte at offset {data.index(0)}); "
                        f"expected a text file")
    try:
        return data.decode(encoding)
    except UnicodeDecodeError:
        logger.warning("%s '%s' is not %s; read it as Latin-1", what, path, encoding)
        return data.decode("latin-1")


def _utf16_without_bom(data: bytes) -> Optional[str]:
    """'utf-16-le'/'-be' when every other byte is 0 and the others are not (ASCII text in UTF-16)."""
    if len(data) < 4 or len(data) % 2:
        return None
    even, odd = data[0::2], data[1::2]
    if odd.count(0) == len(odd) and even.count(0) == 0:
        return "utf-16-le"
    if even.count(0) == len(even) and odd.count(0) == 0:
        return "utf-16-be"
    return None


def _decode(data: bytes, encoding: str, path: os.PathLike, what: str, logged: bool) -> str:
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError as exc:
        raise DataError(f"{what} '{path}' starts like {encoding} text but is not: {exc.reason} at byte "
                        f"{exc.start}") from exc
    if logged:
        logger.warning("%s '%s' is %s text, not UTF-8; read it as such", what, path, encoding.upper())
    return text.lstrip("\ufeff")


def read_text(path: os.PathLike, what: str, max_bytes: int = MAX_TEXT_BYTES, encoding: str = "utf-8") -> str:
    """A user's text file, checked and decoded (module docstring); DataError naming the file otherwise."""
    data = read_bytes(path, what, max_bytes)
    if not data.strip():
        raise DataError(f"{what} '{path}' is empty ({len(data)} bytes); expected the annotations")
    return decode_text(data, path, what, encoding)


def read_csv(path: os.PathLike, what: str, *, rows_required: bool = True, **kwargs: Any) -> pd.DataFrame:
    """``pd.read_csv`` of a user's table after :func:`read_text` and the quote/cell checks.

    Args:
        what: the file's role, for messages ("TID2013 annotations").
        rows_required: a header with no rows is a DataError (an empty dataset helps no one).
        kwargs: passed to ``pd.read_csv`` (``dtype=str``, ``sep``, ``header``...).
    """
    text = read_text(path, what)
    sep = kwargs.get("sep", ",")
    if isinstance(sep, str) and len(sep) == 1:
        _check_quotes(text, sep, path, what)
    try:
        table = pd.read_csv(io.StringIO(text), **kwargs)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError, csv.Error) as exc:
        raise DataError(f"{what} '{path}' cannot be read as a table: {str(exc).strip()}") from exc
    if rows_required and table.empty:
        raise DataError(f"{what} '{path}' has no rows (only a header{'' if len(table.columns) else ', or nothing'}); "
                        f"an empty dataset cannot be prepared")
    return table


def _check_quotes(text: str, sep: str, path: os.PathLike, what: str) -> None:
    """DataError for a quote never closed or a cell over the csv field limit, naming the line."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=sep, strict=True)
    start = 1
    try:
        for _ in reader:
            start = reader.line_num + 1
    except csv.Error as exc:
        message = str(exc)
        if "unexpected end of data" in message:
            raise DataError(f"{what} '{path}' line {start}: a quote (\") opens a cell that is never closed, "
                            f"so every line after it would be read as one cell; fix the quoting") from exc
        if "field larger than field limit" in message:
            raise DataError(f"{what} '{path}' line {start}: a cell is longer than {csv.field_size_limit()} "
                            f"characters, the cap for one cell; is it the right file?") from exc
        raise DataError(f"{what} '{path}' line {start}: the quoting is broken ({message}); a quote (\") "
                        f"that opens a cell must close it, and a quote inside a quoted cell is doubled "
                        f"(\"\")") from exc


def check_names(names: Iterable[Any], rows: Sequence[str], where: str, allow_absolute: bool = False,
                option: Optional[str] = None) -> None:
    """DataError at the first image name that is absolute (unless ``allow_absolute``), climbs out of its
    folder with ``..``, is empty, holds a control character (NUL, a newline...) or is too long to be a
    file name.

    Args:
        names: image names as listed.
        rows: for each name, where it sits ("line 5", "entry 3").
        where: the file, for messages ("AGIQA-3K: '/data/agiqa3k/data.csv'").
        option: the flag or key that allows absolute names, named in the message where there is one.
    """
    for name, row in zip(names, rows):
        why = name_problem(str(name), allow_absolute, option)
        if why:
            raise DataError(f"{where} {row}: image name '{shown(str(name))}' {why}")
