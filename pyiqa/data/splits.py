"""Which meta-CSV rows a dataset phase uses, following pyiqa's conventions exactly.

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


def select_rows(table: pd.DataFrame, csv_path: Any, phase: str, where: str, *, split_file: Optional[str],
                split_index: SplitIndex, split_ratio: Any, split_column: Optional[str],
                override_phase: Optional[str], official: Callable[[], Optional[Split]],
                adjust_split_file: Optional[Callable[[Split], Split]] = None) -> Tuple[str, List[int]]:
    """(description of the split source, rows for the phase); see the module docstring.

    ``adjust_split_file``: a dataset's own rule applied to a split file's lists (AVA's validation list).
    """
    if override_phase is not None and override_phase not in SPLIT_NAMES:
        raise ConfigError(f"'{where}.override_phase' must be one of {list(SPLIT_NAMES)}, got {override_phase!r}")
    if split_index is not None and (isinstance(split_index, bool) or not isinstance(split_index, (int, str))):
        raise ConfigError(f"'{where}.split_index' must be an integer (1..10 by convention) or a split "
                          f"column name, got {split_index!r}")
    if split_file is not None and split_column is not None:
        raise ConfigError(f"'{where}': give split_file or split_column, not both")
    num_rows = len(table)
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
            logger.info("%s: no split given: phase '%s' uses all %d rows", where, phase, num_rows)
            return "all rows", list(range(num_rows))
        source = "official split"
    for part in SPLIT_NAMES:
        check_rows(split[part], num_rows, f"{source}, '{part}'")
    part = override_phase or phase
    if part == "val" and not split["val"] and split["test"] and override_phase is None:
        logger.warning("%s: the %s has no 'val' rows: validation runs on the TEST split (release protocol), "
                       "so the best-checkpoint score is not an unbiased test estimate", where, source)
        part = "test"
    if not split[part]:
        hint = (" (the split has only train/val parts: evaluate its val part with override_phase: val)"
                if part == "test" and split["val"] else "")
        raise DataError(f"{where}: {source} has no '{part}' rows (sizes: "
                        f"{ {k: len(v) for k, v in split.items()} }){hint}")
    return f"{source}, '{part}'", list(split[part])
