"""Read pyiqa meta_info CSVs and train/val/test splits, failing with messages that locate the problem.

Meta CSV: a header line, then one row per image; by default column 0 = image path relative to the
dataset folder and column 1 = MOS, further columns free (split columns, vote counts, ...). pyiqa's CSVs
of synthetic-distortion sets put the reference first (``ref_name, dist_name, mos``): name the columns
(``image_column='dist_name'``) to read them unchanged. "Row i" in this module is the
0-based data row (the index split pickles use); the file line is i + 2.

Split column: one value per row naming its part: the words ``train``/``val``/``test`` (ours; KonIQ's own
``training``/``validation`` too) or IQA-PyTorch's codes ``0``/``1``/``2`` (its KonIQ and FLIVE ``split``
column, its AVA ``official split`` column), so its published CSVs are read unchanged.

Split pickle: ``{split_index: {'train': [row, ...], 'val': [...], 'test': [...]}}``. It is read with a
restricted unpickler (:mod:`pyiqa.utils.safe_pickle`): plain containers, ints, strings and NumPy integer
arrays only, so a planted split file cannot run code.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

import pandas as pd

from ..utils.errors import DataError
from ..utils.image_names import MAX_NAME_CHARS, name_problem
from ..utils.safe_pickle import load_data_pickle

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]
SPLIT_NAMES = ("train", "val", "test")
Split = Dict[str, List[int]]
#: IQA-PyTorch's split codes (``scripts/process_koniq10k.py``, ``process_flive.py``, ``process_ava.py``).
SPLIT_CODES = {0: "train", 1: "val", 2: "test"}
#: Words a split column may hold: ours, and the KonIQ authors' ``set`` words our older CSVs copied.
SPLIT_WORDS = {"train": "train", "val": "val", "test": "test", "training": "train", "validation": "val"}
#: Spellings of the official-split column: ours, then IQA-PyTorch's (its AVA CSV of 2022 writes
#: ``official split``; its KonIQ and FLIVE CSVs of 2022 write ``split``).
OFFICIAL_SPLIT_COLUMNS = ("official_split", "official split", "split")


def read_meta_info(path: PathLike, image_column: Optional[str] = None,
                   mos_column: Optional[str] = None, check_names: bool = True) -> pd.DataFrame:
    """Load a meta_info CSV; the image column is stripped text and the MOS column ``float64`` (checked).

    Args:
        image_column, mos_column: column names; None = the first and the second column.
        check_names: refuse image names that leave the image folder (absolute, or climbing out with
            ``..``); a caller with its own rule (an opt-in for absolute paths) checks them itself.

    Raises:
        DataError: missing/unparsable file, fewer than 2 columns, a named column that does not exist
            (the columns are listed), no rows, empty image name, or a MOS that is not a number (naming
            the CSV, the row and the value).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"Meta info CSV '{path}' does not exist")
    try:
        # Read everything as text first so a bad MOS can be reported verbatim.
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"Meta info CSV '{path}' cannot be parsed: {exc}") from exc
    if table.shape[1] < 2:
        raise DataError(f"Meta info CSV '{path}' needs at least 2 columns (image name, MOS), "
                        f"found {list(table.columns)}")
    if len(table) == 0:
        raise DataError(f"Meta info CSV '{path}' has a header but no rows")
    name_col, mos_col = meta_columns(table, path, image_column, mos_column)
    table[name_col] = table[name_col].str.strip()
    empty = table.index[table[name_col] == ""]
    if len(empty):
        raise DataError(f"Meta info CSV '{path}': row {empty[0]} (line {empty[0] + 2}) has an empty "
                        f"image name in column '{name_col}'")
    if check_names:  # every image stays inside dataroot_target
        names = table[name_col]
        # only names that could leave the folder get the full check (AVA: 255k rows, read per section)
        suspect = names.str.contains(r"\.\.|^[/\\]|:|\x00", regex=True) | (names.str.len() > MAX_NAME_CHARS)
        for row in suspect.to_numpy().nonzero()[0]:
            problem = name_problem(names.iloc[row])
            if problem:
                raise DataError(f"Meta info CSV '{path}': row {row} (line {row + 2}): image name "
                                f"{names.iloc[row][:200]!r} {problem}")
    mos = pd.to_numeric(table[mos_col].str.strip(), errors="coerce")
    bad = mos.index[mos.isna() | ~mos.abs().lt(float("inf"))]
    if len(bad):
        row = int(bad[0])
        raise DataError(f"Meta info CSV '{path}': row {row} (line {row + 2}) has MOS "
                        f"{table[mos_col].iloc[row]!r} in column '{mos_col}', which is not a number "
                        f"({len(bad)} bad row(s) in total)")
    table[mos_col] = mos.astype("float64")
    return table


def meta_columns(table: pd.DataFrame, path: PathLike, image_column: Optional[str] = None,
                 mos_column: Optional[str] = None) -> Tuple[str, str]:
    """(image column, MOS column) of a meta table: the named ones (checked) or the first two."""
    chosen = []
    for given, default, what in ((image_column, 0, "image_column"), (mos_column, 1, "mos_column")):
        if given is None:
            chosen.append(table.columns[default])
        elif given in table.columns:
            chosen.append(given)
        else:
            raise DataError(f"Meta info CSV '{path}' has no column '{given}' ({what}); its columns: "
                            f"{list(table.columns)}")
    if chosen[0] == chosen[1]:
        raise DataError(f"Meta info CSV '{path}': image and MOS column are both '{chosen[0]}'")
    return chosen[0], chosen[1]


def numeric_columns(table: pd.DataFrame, columns: Sequence[str], csv_path: PathLike) -> pd.DataFrame:
    """Parse text ``columns`` of a meta table as numbers, naming the first bad cell on failure."""
    out = table[list(columns)].apply(lambda c: pd.to_numeric(c.str.strip(), errors="coerce"))
    bad = out.isna()
    if bad.to_numpy().any():
        row = int(bad.any(axis=1).to_numpy().nonzero()[0][0])
        col = bad.columns[bad.iloc[row].to_numpy().nonzero()[0][0]]
        raise DataError(f"Meta info CSV '{csv_path}': row {row} (line {row + 2}) has "
                        f"{table[col].iloc[row]!r} in column '{col}', which is not a number")
    return out.astype("float64")


def read_split_pickle(path: PathLike, split_index: Union[int, str]) -> Split:
    """Return ``{'train': rows, 'val': rows, 'test': rows}`` of split ``split_index`` (missing -> []).

    Raises:
        DataError: missing/unreadable file, a refused object (anything but plain data and NumPy
            integer arrays: unpickling it could run code), not a dict of splits, unknown
            ``split_index`` (the available ones are listed), or row entries that are not integers.
    """
    path = Path(path)
    splits = load_data_pickle(path, "Split file")
    if not isinstance(splits, dict):
        raise DataError(f"Split file '{path}' must hold a dict {{split_index: {{'train': [...], ...}}}}, "
                        f"got {type(splits).__name__}")
    key = _find_key(splits, split_index)
    if key is None:
        raise DataError(f"Split file '{path}' has no split_index {split_index!r}; available: "
                        f"{sorted(splits, key=str)}")
    entry = splits[key]
    if not isinstance(entry, dict):
        raise DataError(f"Split file '{path}', split {split_index!r}: expected a dict with "
                        f"'train'/'val'/'test' lists, got {type(entry).__name__}")
    out: Split = {}
    for name in SPLIT_NAMES:
        rows = entry.get(name)
        rows = [] if rows is None else rows  # may be a NumPy array: no truth value
        try:
            out[name] = [_as_row(r) for r in rows]
        except (TypeError, ValueError) as exc:
            raise DataError(f"Split file '{path}', split {split_index!r}, '{name}': {exc}") from exc
    return out


def _find_key(splits: dict, split_index: Union[int, str]):
    """Match ``split_index`` to a pickle key, tolerating int-vs-str (YAML may give either)."""
    for key in splits:
        if key == split_index or str(key) == str(split_index):
            return key
    return None


def _as_row(value) -> int:
    if isinstance(value, bool) or int(value) != value:
        raise ValueError(f"row index {value!r} is not an integer")
    return int(value)


def find_split_column(table: pd.DataFrame, column: str) -> Optional[str]:
    """The column of ``table`` that holds split ``column``: itself, or for ``official_split`` the first
    of :data:`OFFICIAL_SPLIT_COLUMNS` present (IQA-PyTorch's published CSVs name it differently);
    None if there is none."""
    if column in table.columns:
        return column
    if column == OFFICIAL_SPLIT_COLUMNS[0]:
        return next((c for c in OFFICIAL_SPLIT_COLUMNS if c in table.columns), None)
    return None


def split_part(value: object) -> Optional[str]:
    """'train'/'val'/'test' for one split cell (a word of :data:`SPLIT_WORDS` in any case, or a code of
    :data:`SPLIT_CODES` such as ``2`` or ``2.0``); None for anything else."""
    text = str(value).strip().lower()
    if text in SPLIT_WORDS:
        return SPLIT_WORDS[text]
    try:
        number = float(text)
    except ValueError:
        return None
    return SPLIT_CODES.get(int(number)) if number.is_integer() else None


def split_from_column(table: pd.DataFrame, column: str, csv_path: PathLike) -> Split:
    """Rows per split from a column naming each row's part (see :func:`split_part`).

    Raises:
        DataError: the column does not exist (available columns listed) or holds another value.
    """
    if column not in table.columns:
        raise DataError(f"Meta info CSV '{csv_path}' has no split column '{column}'; columns: "
                        f"{list(table.columns)}")
    parts = table[column].map(split_part)
    bad = parts.index[parts.isna()]
    if len(bad):
        row = int(bad[0])
        raise DataError(f"Meta info CSV '{csv_path}': row {row} (line {row + 2}) has "
                        f"{table[column].iloc[row]!r} in split column '{column}'; expected one of "
                        f"{list(SPLIT_NAMES)} or IQA-PyTorch's codes 0 (train), 1 (val), 2 (test)")
    return {name: parts.index[parts == name].tolist() for name in SPLIT_NAMES}


def check_rows(rows: Sequence[int], num_rows: int, source: str) -> None:
    """Raise DataError if a split row index falls outside ``[0, num_rows)``.

    Args:
        source: what the rows came from, e.g. ``"split file 'x.pkl', split 1, 'train'"``.
    """
    bad = [r for r in rows if not 0 <= r < num_rows]
    if bad:
        raise DataError(f"{source}: row index {bad[0]} is out of range; the meta CSV has {num_rows} "
                        f"usable rows (0..{num_rows - 1}). {len(bad)} bad index(es) in total; is the "
                        f"split file meant for this meta CSV?")
