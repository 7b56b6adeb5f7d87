"""AVA aesthetics: MOS = mean vote (1-10) plus the ten-bin vote histogram, with pyiqa's conventions.

Meta CSV columns (pyiqa's ``meta_info_AVADataset.csv`` layout): image name, MOS, ten vote counts (votes
for score 1..10), then optional columns such as ``official_split`` (0 train, 1 val, 2 test, or the words;
used when no split_file / split_index is given; IQA-PyTorch's CSV of 2022 spells it ``official split``
and codes only 0 train / 2 test).

As in pyiqa:

* the label is MOS / 10 (``mos_range: [0, 10]``, ``mos_normalize: true`` are the defaults here), and
  items carry ``mos_dist``, the vote histogram normalised to sum 1;
* with a ``split_file``, the validation set is the last ``val_num`` (default 2,000) images of the
  split's ``val`` list and the rest of that list joins ``train`` (the split files hold the ~20k standard
  test images as ``test`` and a large ``val`` list);
* with the official split column, its parts are used as they are, except that a column without val rows
  (IQA-PyTorch's, coded 0 train / 2 test) gives its last ``val_num`` train rows to validation, as
  IQA-PyTorch's own ``AVADataset`` does.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import pandas as pd
import torch

from ..utils.errors import ConfigError, DataError
from ..utils.registry import DATASET_REGISTRY, check_kwargs
from .general_nr_dataset import GeneralNRDataset
from .meta_info import OFFICIAL_SPLIT_COLUMNS, Split, find_split_column, numeric_columns, split_from_column

logger = logging.getLogger(__name__)

NUM_BINS = 10
OFFICIAL_SPLIT_COLUMN = "official_split"
DEFAULT_VAL_NUM = 2000


@DATASET_REGISTRY.register()
class AVADataset(GeneralNRDataset):
    """AVA items add ``mos_dist``: float32 (10,), the vote histogram normalised to sum 1.

    Rows whose ten vote counts are all zero have no distribution and raise DataError (naming the row)
    when they are selected for the phase.

    Args:
        val_num: with a split_file, the size of the validation list (see the module docstring).
        Other options as GeneralNRDataset, with ``mos_range`` [0, 10] and ``mos_normalize`` on by default.
    """

    def __init__(self, *args: Any, val_num: int = DEFAULT_VAL_NUM, mos_range: Optional[List[float]] = (0, 10),
                 mos_normalize: bool = True, where: Optional[str] = None, **kwargs: Any):
        where = where or f"datasets.{kwargs.get('phase', 'train')}"
        _check_val_num(val_num, where)
        check_kwargs(GeneralNRDataset.__init__, kwargs, where, also=("val_num",))
        self.val_num = val_num
        super().__init__(*args, mos_range=mos_range, mos_normalize=mos_normalize, where=where, **kwargs)

    def row_options(self) -> Dict[str, Any]:
        return {"val_num": self.val_num}

    @classmethod
    def find_split(cls, table: pd.DataFrame, options: Dict[str, Any], where: str
                   ) -> Tuple[str, Optional[Split]]:
        _check_val_num(options.get("val_num", DEFAULT_VAL_NUM), where)  # a section the runner reads
        return super().find_split(table, options, where)

    @classmethod
    def adjust_split_file(cls, split: Split, options: Dict[str, Any]) -> Split:
        val_num = options.get("val_num", DEFAULT_VAL_NUM)
        val = list(split["val"])
        keep = val[len(val) - val_num:] if val_num else []
        return {**split, "train": list(split["train"]) + val[:len(val) - len(keep)], "val": keep}

    @classmethod
    def official_split(cls, table: pd.DataFrame, options: Dict[str, Any], where: str) -> Optional[Split]:
        csv = options.get("meta_info_file")
        column = find_split_column(table, OFFICIAL_SPLIT_COLUMN)
        if column is None:
            raise DataError(f"AVA meta CSV '{csv}' has no official split column (any of "
                            f"{list(OFFICIAL_SPLIT_COLUMNS)}) and no split_file/split_column was given; "
                            f"columns: {list(table.columns)}")
        split = split_from_column(table, column, csv)
        val_num = options.get("val_num", DEFAULT_VAL_NUM)
        train = split["train"]
        borrow = min(val_num, len(train) - 1)  # keep one row to train on
        if split["val"] or borrow <= 0:
            return split
        logger.info("%s: the official split column '%s' has no val rows (IQA-PyTorch's layout): the last %d "
                    "train rows validate (val_num=%d)", where, column, borrow, val_num)
        return {**split, "train": train[:len(train) - borrow], "val": train[len(train) - borrow:]}

    def _vote_columns(self) -> List[str]:
        columns = list(self.table.columns)
        if len(columns) < 2 + NUM_BINS:
            raise DataError(f"AVA meta CSV '{self.meta_info_file}' needs columns: image name, MOS, "
                            f"{NUM_BINS} vote counts; found {columns}")
        return columns[2:2 + NUM_BINS]

    def _validate_rows(self, rows: List[int]) -> None:
        votes = numeric_columns(self.table, self._vote_columns(), self.meta_info_file).to_numpy()
        if (votes < 0).any():
            row = int(np.flatnonzero((votes < 0).any(axis=1))[0])
            raise DataError(f"AVA meta CSV '{self.meta_info_file}': row {self.csv_row(row)} "
                            f"(line {self.csv_row(row) + 2}) has a negative vote count")
        totals = votes.sum(axis=1)
        selected = np.asarray(rows, dtype=np.int64)
        empty = selected[totals[selected] == 0]
        if empty.size:
            row = int(empty[0])
            raise DataError(f"AVA meta CSV '{self.meta_info_file}': row {self.csv_row(row)} "
                            f"(line {self.csv_row(row) + 2}, image '{self.image_name(row)}') has all "
                            f"{NUM_BINS} vote counts zero ({empty.size} such row(s) selected)")
        self.vote_dist = (votes / np.maximum(totals, 1)[:, None]).astype(np.float32)

    def _extra_item(self, row: int) -> Dict[str, Any]:
        return {"mos_dist": torch.from_numpy(self.vote_dist[row].copy())}


def _check_val_num(val_num: Any, where: str) -> None:
    if not isinstance(val_num, int) or isinstance(val_num, bool) or val_num < 0:
        raise ConfigError(f"'{where}.val_num' must be an integer >= 0, got {val_num!r}")
