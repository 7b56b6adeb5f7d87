"""Seeded train/val/test splits and few-label subsets, in pyiqa's split-pickle and split-column forms.

Splits are drawn over *contents*: for a synthetic-distortion set every reference image is one content,
so all its distorted versions land on the same side and no scene is seen in training and in test; for
an authentic set every image is its own content. Split ``k`` (1..10) of a ratio is drawn from
``numpy.random.default_rng([seed, k])``, so the same rows always give the same splits.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import pandas as pd

from ..meta_info import SPLIT_NAMES, Split
from ..splits import SPLIT_SEED, split_column_name

SEED = SPLIT_SEED  # the splits are drawn with the seed their names carry
NUM_SPLITS = 10
#: pyiqa's ratio tags: '802' = 80% train / 0% val / 20% test, '712' = 70/10/20.
RATIOS: Dict[str, Tuple[float, float, float]] = {"802": (0.8, 0.0, 0.2), "712": (0.7, 0.1, 0.2)}
FEW_LABELS = (50, 100, 200)


def part_sizes(num_contents: int, ratio: Tuple[float, float, float]) -> Tuple[int, int, int]:
    """Contents per part: rounded shares, every non-zero share at least one content when possible."""
    train = int(round(ratio[0] * num_contents))
    val = int(round(ratio[1] * num_contents)) if ratio[1] else 0
    if ratio[1] and val == 0 and num_contents >= 3:
        val = 1
    test = num_contents - train - val
    if test < 1 and num_contents >= 2:  # a split without test rows is useless
        train -= 1 - test
        test = 1
    return train, val, test


def random_splits(num_rows: int, ratio: str = "802", groups: Optional[Sequence[str]] = None,
                  seed: int = SEED, num_splits: int = NUM_SPLITS) -> Dict[int, Split]:
    """``{1..num_splits: {'train', 'val', 'test'}}`` row lists (ascending) for pyiqa ratio ``ratio``.

    Args:
        num_rows: rows the indices refer to (0..num_rows-1).
        groups: per row, the content it shows (its reference image); None = one content per row.
    """
    shares = RATIOS[ratio]
    labels = np.arange(num_rows) if groups is None else np.asarray(groups, dtype=object)
    if len(labels) != num_rows:
        raise ValueError(f"{len(labels)} group labels for {num_rows} rows")
    contents, row_content = np.unique(labels.astype(str), return_inverse=True)
    n_train, n_val, _ = part_sizes(len(contents), shares)
    splits: Dict[int, Split] = {}
    for k in range(1, num_splits + 1):
        order = np.random.default_rng([seed, k]).permutation(len(contents))
        part_of_content = np.empty(len(contents), dtype=np.int64)
        part_of_content[order[:n_train]] = 0
        part_of_content[order[n_train:n_train + n_val]] = 1
        part_of_content[order[n_train + n_val:]] = 2
        part = part_of_content[row_content]
        splits[k] = {name: np.flatnonzero(part == i).tolist() for i, name in enumerate(SPLIT_NAMES)}
    return splits


def few_label_splits(splits: Dict[int, Split], num_labels: int, seed: int = SEED) -> Dict[int, Split]:
    """Repeat ``k`` = ``num_labels`` training rows drawn from split ``k``'s train part; val/test kept.

    The test part is untouched, so a few-label score is comparable with the full-label one of the same
    split. Raises ValueError when a train part holds fewer rows than ``num_labels``.
    """
    out: Dict[int, Split] = {}
    for k, split in splits.items():
        train = np.asarray(split["train"], dtype=np.int64)
        if len(train) < num_labels:
            raise ValueError(f"split {k} has {len(train)} training rows, fewer than {num_labels}")
        rng = np.random.default_rng([seed, k, num_labels])
        chosen = np.sort(rng.choice(train, size=num_labels, replace=False)).tolist()
        out[k] = {"train": chosen, "val": list(split["val"]), "test": list(split["test"])}
    return out


def split_columns(splits: Dict[int, Split], num_rows: int, ratio: str, offset: int = 0,
                  total_rows: Optional[int] = None) -> pd.DataFrame:
    """pyiqa split columns ``ratio{ratio}_seed123_split_{k:02d}`` holding 'train'/'val'/'test'.

    ``offset`` leading CSV rows (outside every split) get an empty cell; ``total_rows`` = CSV rows.
    """
    total_rows = num_rows + offset if total_rows is None else total_rows
    columns = {}
    for k, split in splits.items():
        values: List[str] = [""] * total_rows
        for name in SPLIT_NAMES:
            for row in split[name]:
                values[row + offset] = name
        columns[split_column_name(k, ratio)] = values
    return pd.DataFrame(columns)
