"""Assertions every dataset preparer's output must satisfy (imported by tests/data/prepare/test_*.py).

``check_prepared`` reads back what ``prepare`` wrote, through the same readers the datasets use
(``read_meta_info``, ``read_split_pickle``), and checks the split arithmetic against the CSV itself.
"""
from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence

import pandas as pd

from pyiqa.data.meta_info import read_meta_info, read_split_pickle, split_from_column
from pyiqa.data.prepare import get_preparer, split_pickle_name, prepare
from pyiqa.data.prepare.split_maker import RATIOS, part_sizes

FEW = (2, 3)


def run_prepare(name: str, root: Path, out: Path, few_labels: Sequence[int] = FEW):
    return prepare(name, root, out, few_labels=few_labels)


def check_prepared(name: str, out: Path, *, columns: List[str], rows: int, lead: int = 0,
                   reference: Optional[str] = None, official: bool = False,
                   few_labels: Sequence[int] = FEW) -> pd.DataFrame:
    """Check the CSV and pickles of dataset ``name`` in ``out``; return the CSV table (text cells).

    Args:
        columns: the CSV's leading columns, in pyiqa's order (checked exactly).
        rows: benchmark rows expected (missing images already left out), ``lead`` extra leading rows.
        reference: the column whose values must never be on both sides of a split.
        official: the dataset defines its own split (``official_split`` column and pickle).
    """
    preparer = get_preparer(name)
    csv = out / preparer.meta_file
    table = read_meta_info(csv, preparer.image_column, preparer.mos_column)
    assert list(table.columns[:len(columns)]) == columns, list(table.columns)
    assert len(table) == rows + lead
    body = table.iloc[lead:].reset_index(drop=True)
    assert body[preparer.mos_column].astype(float).notna().all()
    for ratio, shares in RATIOS.items():
        pickled = {k: read_split_pickle(out / split_pickle_name(name, f"ratio{ratio}"), k) for k in range(1, 11)}
        contents = body[reference].nunique() if reference else rows
        want = part_sizes(contents, shares)
        seen = set()
        for k in range(1, 11):
            column = f"ratio{ratio}_seed123_split_{k:02d}"
            assert (table[column].iloc[:lead] == "").all()
            split = split_from_column(body, column, csv)
            assert split == pickled[k], (ratio, k)  # column and pickle agree
            assert sorted(sum(split.values(), [])) == list(range(rows))  # a partition of the rows
            if reference:
                parts = [set(body[reference].iloc[split[p]]) for p in ("train", "val", "test")]
                assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2]), (ratio, k)
                got = tuple(len(p) for p in parts)
            else:
                got = tuple(len(split[p]) for p in ("train", "val", "test"))
            assert got == want, (ratio, k, got, want)
            seen.add(tuple(split["test"]))
        if contents >= 5:
            assert len(seen) > 1, "the ten splits are all the same"
    train_802 = {k: read_split_pickle(out / split_pickle_name(name, "ratio802"), k) for k in range(1, 11)}
    for n in few_labels:
        for k in range(1, 11):
            few = read_split_pickle(out / split_pickle_name(name, f"fewlabel{n}"), k)
            assert len(few["train"]) == n and set(few["train"]) <= set(train_802[k]["train"])
            assert few["test"] == train_802[k]["test"]
    assert ("official_split" in table.columns) == official
    assert (out / split_pickle_name(name, "official")).is_file() == official
    if official:
        split = read_split_pickle(out / split_pickle_name(name, "official"), 1)
        assert sorted(sum(split.values(), [])) == list(range(rows))
    return table


def check_rerun_is_noop(name: str, root: Path, out: Path) -> None:
    """A second run with the same inputs rewrites nothing."""
    before = {p: p.read_bytes() for p in out.iterdir()}
    report = run_prepare(name, root, out)
    assert report.written == []
    assert {p: p.read_bytes() for p in out.iterdir()} == before
