"""Which meta-CSV rows a dataset phase uses, following pyiqa's conventions exactly: the one home of
row selection. Datasets select their rows here, and so does the split runner, by asking the dataset class
(``GeneralNRDataset.section_split``), so the two cannot disagree.

* ``split_file`` (a split pickle): the list ``[split_index][phase]``; ``split_index`` defaults to 1.
* no ``split_file`` but a ``split_index``: an integer N names the CSV column
  ``ratio{split_ratio}_seed123_split_{N:02d}`` (``split_ratio`` defaults to ``802``: 80/20), a string
  names the column directly; the rows whose value names the phase are used (the words train/val/test
  or IQA-PyTorch's codes 0/1/2, see :mod:`pyiqa.data.meta_info`). ``official_split`` also finds
  IQA-PyTorch's spellings of that column (``official split``, ``split``). A missing column is an
  error listing the CSV's split columns. (``split_column`` is the same as a string ``split_index``.)
* neither: every row (e.g. testing a whole dataset), or a dataset's own official split (AVA).
* ``override_phase`` replaces the phase used for the lookup, so a ``test_*`` section can evaluate the
  ``val`` rows of a train/val-only split file (what the LIVEC and KonIQ split files of the release and
  of pyiqa hold).
* A phase ``val`` whose split has no val rows falls back to the test rows with a warning: the release's
  protocol, whose best-checkpoint score is then not an unbiased test estimate.
* Rows outside every split exist only as leading rows a dataset class drops before selecting (LIVE
  Challenge's 7 "training" images, ``skip_rows``): split indices count the rows after them and their
  (empty) split cells are never read. Any other row of a split column must name its part.
"""
from __future__ import annotations

import logging
import re
from typing import Any, Callable, List, Optional, Tuple, Union

import pandas as pd

from ..utils.errors import ConfigError, DataError
from .meta_info import (SPLIT_NAMES, Split, check_rows, find_split_column, read_split_pickle,
                        split_from_column)

logger = logging.getLogger(__name__)

SplitIndex = Optional[Union[int, str]]


#: The seed in pyiqa's split names (``ratio802_seed123_split_01``, ``koniq10k_ratio802_seed123.pkl``); the
#: preparers also draw their splits with it. Every split name is spelled by the functions below, only here.
SPLIT_SEED = 123


def split_column_prefix(split_ratio: Any = "802") -> str:
    """``ratio{split_ratio}_seed123_split_``: the split columns of one ratio, before the two-digit index."""
    return f"ratio{split_ratio}_seed{SPLIT_SEED}_split_"


def split_column_name(split_index: Union[int, str], split_ratio: Any = "802") -> str:
    """pyiqa's split column for an integer ``split_index`` (a string is a column name already)."""
    if isinstance(split_index, str):
        return split_index
    return f"{split_column_prefix(split_ratio)}{int(split_index):02d}"


def split_pickle_name(prefix: str, kind: str) -> str:
    """File name of a split pickle: ``kind`` is 'ratio802', 'ratio712', 'official' or 'fewlabel50'."""
    return f"{prefix}_{kind}.pkl" if kind == "official" else f"{prefix}_{kind}_seed{SPLIT_SEED}.pkl"


def few_label_pickle_name(prefix: str, labels: int) -> str:
    """``<prefix>_fewlabel<labels>_seed123.pkl``: the few-label repeats the preparers write."""
    return split_pickle_name(prefix, f"fewlabel{labels}")


_SPLIT_PICKLE = re.compile(r"(.+?)_(ratio\d+_seed\d+|official|fewlabel\d+_seed\d+)\.pkl")


def split_pickle_prefix(file_name: str) -> Optional[str]:
    """The dataset prefix of a split pickle's name (``koniq10k`` of ``koniq10k_ratio802_seed123.pkl``), or
    None for a name that does not follow the convention."""
    match = _SPLIT_PICKLE.fullmatch(file_name)
    return match.group(1) if match else None


SPLIT_KEYS = ("split_file", "split_index", "split_ratio", "split_column", "override_phase")
"""The options of a dataset section that say which rows it reads (besides ``meta_info_file``)."""


def find_split(table: pd.DataFrame, csv_path: Any, where: str, *, split_file: Optional[str] = None,
               split_index: SplitIndex = None, split_ratio: Any = None, split_column: Optional[str] = None,
               override_phase: Optional[str] = None, official: Callable[[], Optional[Split]] = lambda: None,
               adjust_split_file: Optional[Callable[[Split], Split]] = None) -> Tuple[str, Optional[Split]]:
    """(description, split) a dataset's rows come from, every part checked against ``table``; the split is
    None when the section reads every row. See the module docstring for the rules.

    Args:
        table: the dataset's rows (a dataset that drops leading CSV rows passes the rest).
        split_ratio: None = ``802``.
        official: the split of a section without split keys (AVA's official split column); None = every row.
        adjust_split_file: a dataset's own rule applied to a split file's lists (AVA's validation list).
    """
    if override_phase is not None and override_phase not in SPLIT_NAMES:
        raise ConfigError(f"'{where}.override_phase' must be one of {list(SPLIT_NAMES)}, got {override_phase!r}")
    if split_index is not None and (isinstance(split_index, bool) or not isinstance(split_index, (int, str))):
        raise ConfigError(f"'{where}.split_index' must be an integer (1..10 by convention) or a split "
                          f"column name, got {split_index!r}")
    if split_file is not None and split_column is not None:
        raise ConfigError(f"'{where}': give split_file or split_column, not both")
    split_ratio = "802" if split_ratio is None else split_ratio
    if split_file is not None:
        index = 1 if split_index is None else split_index
        split, source = read_split_pickle(split_file, index), f"split file '{split_file}', split {index}"
        if adjust_split_file is not None:
            split = adjust_split_file(split)
    elif split_column is not None or split_index is not None:
        asked = split_column if split_column is not None else split_column_name(split_index, split_ratio)
        column = find_split_column(table, asked)
        if column is None:
            columns = [c for c in table.columns if str(c).startswith("ratio") or "split" in str(c)]
            raise DataError(f"{where}: meta CSV '{csv_path}' has no split column '{asked}' (from "
                            f"split_index={split_index!r}, split_ratio={split_ratio!r}); its split columns: "
                            f"{columns or 'none'}. Give a split_file, or a split_index naming one of them")
        if column != asked:
            logger.info("%s: meta CSV '%s' has no '%s' column; using its '%s' column, IQA-PyTorch's name "
                        "for the official split", where, csv_path, asked, column)
        split, source = split_from_column(table, column, csv_path), f"split column '{column}'"
    else:
        split = official()
        if split is None:
            return "all rows", None
        source = "official split"
    for part in SPLIT_NAMES:
        check_rows(split[part], len(table), f"{source}, '{part}'")
    return source, split


def phase_part(split: Split, phase: str, override_phase: Optional[str] = None) -> str:
    """The part of ``split`` that ``phase`` reads: ``override_phase``, else the phase itself, except that
    a val phase whose split has no val rows reads the test rows (the release's protocol)."""
    if override_phase is not None:
        return override_phase
    if phase == "val" and not split["val"] and split["test"]:
        return "test"
    return phase


def check_part(split: Split, part: str, source: str, where: str) -> None:
    """DataError when ``part`` of ``split`` has no rows (with a hint for train/val-only split files)."""
    if not split[part]:
        hint = (" (the split has only train/val parts: evaluate its val part with override_phase: val)"
                if part == "test" and split["val"] else "")
        raise DataError(f"{where}: {source} has no '{part}' rows (sizes: "
                        f"{ {k: len(v) for k, v in split.items()} }){hint}")


def phase_rows(source: str, split: Optional[Split], num_rows: int, phase: str, where: str,
               override_phase: Optional[str] = None) -> Tuple[str, List[int]]:
    """(description, rows) that ``phase`` reads from a :func:`find_split` result: every row when there is
    no split, else the part :func:`phase_part` names (checked by :func:`check_part`)."""
    if split is None:
        logger.info("%s: no split given: phase '%s' uses all %d rows", where, phase, num_rows)
        return source, list(range(num_rows))
    part = phase_part(split, phase, override_phase)
    if part != phase and override_phase is None:
        logger.warning("%s: the %s has no 'val' rows: validation runs on the TEST split (release protocol), "
                       "so the best-checkpoint score is not an unbiased test estimate", where, source)
    check_part(split, part, source, where)
    return f"{source}, '{part}'", list(split[part])
