"""Unreadable training images and per-sample randomness, shared by every training dataset.

* A training image that cannot be decoded (0-byte, truncated, not an image) is replaced in its batch by
  another entry chosen from its index, so batch shapes stay intact on every rank; the trainer counts
  the failures and stops, writing the list, once more than a tolerated fraction failed.
* Every random choice of a training sample (crop, flip, caption) is drawn from
  ``sample_seed(seed, epoch, index)``: a sample looks the same whichever worker or rank loads it and
  whether or not the run was interrupted, which is what makes a resumed run continue exactly.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, TypeVar

import logging

import numpy as np

from ..utils.errors import DataError

logger = logging.getLogger(__name__)

MAX_REPLACEMENTS = 50  # consecutive unreadable images tried before a batch is given up
T = TypeVar("T")


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A well-mixed 63-bit seed for one sample of one epoch."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(2, np.uint64)[0] >> np.uint64(1))


def load_or_replace(index: int, length: int, load: Callable[[int], T],
                    name: Callable[[int], str]) -> Tuple[T, List[Tuple[str, str]]]:
    """``load(index)``, or when it raises DataError ``load`` of a stand-in entry chosen from (index,
    attempt), so the choice is deterministic. Returns (the loaded item, [(name(entry), reason), ...] of
    the failed attempts); DataError after MAX_REPLACEMENTS failures in a row."""
    failed: List[Tuple[str, str]] = []
    idx = index
    for attempt in range(MAX_REPLACEMENTS):
        try:
            return load(idx), failed
        except DataError as err:
            failed.append((name(idx), str(err)))
            idx = (idx + 1 + attempt * 7919) % length
    raise DataError(f"{MAX_REPLACEMENTS} consecutive training images are unreadable, e.g. {failed[:3]}")


class FailureTracker:
    """Counts unreadable images; the run stops once more than ``max_fraction`` of them fail.

    Args:
        total: number of training entries the fraction refers to.
        max_fraction: tolerated share of failures (0.01 = 1 %).
        report: file that receives the full list when the run stops.
    """

    def __init__(self, total: int, max_fraction: float = 0.01, report: Optional[Path] = None):
        self.total = total
        self.max_fraction = max_fraction
        self.report = report
        self.failed: Dict[str, str] = {}  # path -> reason

    def add(self, failures: Sequence[Tuple[str, str]]) -> List[str]:
        """Record (path, reason) pairs; returns the paths not seen before."""
        new = [p for p, _ in failures if p not in self.failed]
        for path, reason in failures:
            self.failed.setdefault(path, reason)
        return new

    def record(self, failures: Sequence[Tuple[str, str]]) -> None:
        """Add a batch's failures, logging each new file once."""
        for path in self.add(failures):
            logger.warning("Skipped unreadable image %s (replaced in its batch): %s", path, self.failed[path])

    def sync(self, world_size: int) -> None:
        """Every rank learns every rank's failures, then all check the limit together (no rank is left
        waiting in a collective while another stops)."""
        if world_size > 1:
            import torch.distributed as td
            gathered: List[Dict[str, str]] = [{} for _ in range(world_size)]
            td.all_gather_object(gathered, self.failed)
            for failed in gathered:
                self.add(list(failed.items()))
        self.check()

    @property
    def limit(self) -> float:
        return self.max_fraction * self.total

    def check(self) -> None:
        """Raise DataError listing the failures when they exceed the tolerated fraction."""
        if len(self.failed) <= self.limit:
            return
        lines = [f"{p}: {r}" for p, r in sorted(self.failed.items())]
        where = ""
        if self.report is not None:
            self.report.parent.mkdir(parents=True, exist_ok=True)
            self.report.write_text("\n".join(lines) + "\n", encoding="utf-8")
            where = f" (full list in {self.report})"
        shown = "\n  ".join(lines[:20]) + (f"\n  ... and {len(lines) - 20} more" if len(lines) > 20 else "")
        raise DataError(f"{len(self.failed)} of {self.total} training images are missing or unreadable "
                        f"(more than {self.max_fraction:.1%}); fix or remove them{where}:\n  {shown}")


