"""Checks on the scores a preparer reads, so every dataset reports a bad cell or a repeated image alike.

A bad score cell (empty, text, ``inf``, ``nan``, or negative where the scale has no negatives) is an error
naming the file, the row and the value: dropping or clipping it silently would change every correlation
computed on the dataset. An image listed twice with the same scores is a harmless copy: kept once (its
first row) and logged. Listed twice with different scores, nothing says which row is right, so it is an
error naming both rows (a preparer with a documented rule for its dataset, such as AGIQA-1K's, resolves
its repeats before calling this).
"""
from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import pandas as pd

from ...utils.errors import DataError

logger = logging.getLogger(__name__)


def scores(values: Sequence, rows: Sequence[str], what: str, where: str,
           negative: bool = False) -> np.ndarray:
    """``values`` as float64; DataError at the first one that is not a finite number (>= 0 unless
    ``negative``: a difference score such as LIVE's realigned DMOS can be below 0).

    Args:
        values: the cells as read (text, numbers or None).
        rows: for each value, where it sits in the file (``"line 12"``, ``"entry 5 (jp2k/img5.bmp)"``).
        what: the column or variable name, for the message.
        where: the dataset and file (``"TID2013: '/data/tid2013/mos_std.txt'"``).
    """
    cells = pd.Series(list(values), dtype=object)
    numbers = pd.to_numeric(cells.map(lambda v: v.strip() if isinstance(v, str) else v), errors="coerce")
    numbers = numbers.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(numbers) | ((numbers < 0) & (not negative))
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        value = cells.iloc[i]
        raise DataError(f"{where} {rows[i]}: {what} {_plain(value)!r} is {_reason(value, numbers[i])}; expected a "
                        f"{'finite number' if negative else 'number >= 0'} ({int(bad.sum())} such cell(s) in all)")
    return numbers


def in_range(numbers: Sequence[float], rows: Sequence[str], what: str, where: str,
             bounds: Sequence[float]) -> None:
    """DataError at the first of ``numbers`` outside the dataset's published scale ``bounds`` = [lo, hi]
    (a -50 on a 0-5 scale is a typo or another column, and would skew every normalised score)."""
    values = np.asarray(numbers, dtype=np.float64)
    lo, hi = float(bounds[0]), float(bounds[1])
    bad = (values < lo) | (values > hi)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"{where} {rows[i]}: {what} {values[i]:g} is outside the dataset's scale "
                        f"[{lo:g}, {hi:g}] ({int(bad.sum())} such value(s) in all, from {values.min():g} to "
                        f"{values.max():g}); is it the right column or file?")


def _reason(value, number: float) -> str:
    if value is None or (isinstance(value, str) and not value.strip()):
        return "empty"
    if np.isnan(number):
        return "not a number (NaN: an empty or unreadable cell)" if isinstance(value, float) else "not a number"
    return "infinite" if np.isinf(number) else "negative"


def drop_repeats(table: pd.DataFrame, image: str, compare: Sequence[str], rows: Sequence[str],
                 where: str) -> pd.DataFrame:
    """``table`` with each repeat of an image name removed when its ``compare`` columns equal the first's.

    Raises:
        DataError: an image is listed again with a different value in a ``compare`` column (both rows and
            values named).
    """
    names = table[image].astype(str)
    repeated = names.duplicated(keep="first").to_numpy()
    if not repeated.any():
        return table
    first = {}
    for i, name in enumerate(names):
        first.setdefault(name, i)
    for i in np.flatnonzero(repeated):
        j = first[names.iloc[i]]
        for column in compare:
            a, b = (_plain(table[column].iloc[k]) for k in (j, i))
            if not (a == b or (pd.isna(a) and pd.isna(b))):
                raise DataError(f"{where}: image '{names.iloc[i]}' is listed twice with different {column}: "
                                f"{a!r} ({rows[j]}) and {b!r} ({rows[i]}); remove the wrong row")
    dropped = names[repeated].tolist()
    logger.warning("%s: %d image(s) listed more than once with the same scores, kept once: %s",
                   where, len(dropped), dropped[:10])
    return table[~repeated].reset_index(drop=True)


def _plain(value):
    """A NumPy scalar as the Python value, so messages show ``3.0``, not ``np.float64(3.0)``."""
    return value.item() if isinstance(value, np.generic) else value
