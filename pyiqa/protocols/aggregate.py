"""Summarise the ``results.json`` of split runs: per split one row, per protocol median/mean/std/n.

Two protocols are read from each run's ``experiments/<run>/results.json`` (written by the trainer):

* ``release``: ``best[<val set>]['metrics']``, the metrics at the best validation score. The release's
  80/20 split files have no validation part, so its val phase falls back to the test part
  (:mod:`pyiqa.data.splits`): the best test score seen while training, which is what the paper reports
  and an optimistic estimate.
* ``honest``: ``test_best_network[<test set>]``, net_best.pth (chosen on a validation part carved out of
  training) scored once on the test part. Only meaningful when the val part is not the test part; the
  split runner decides that per split and leaves ``honest`` empty otherwise, with the reason.

``cross``: net_best.pth on whole other datasets (``test_<dataset>`` sections), from
``test_best_network``. Statistics use the finite values only; ``std`` is the sample std (ddof=1), null
when fewer than two values exist.
"""
from __future__ import annotations

import csv
import io
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

from ..utils.atomic import write_bytes
from ..utils.run_results import RunResults
from .result_files import read_json_object

logger = logging.getLogger(__name__)

METRICS = ("srcc", "plcc", "krcc")
PROTOCOLS = ("release", "honest")
Metrics = Dict[str, float]


@dataclass
class SplitRecord:
    """One finished split: its identity, cost and the metrics of each protocol (None: not available)."""
    split: int
    labels: Optional[int]
    run: str
    iterations: int
    seconds: float
    val_part: str                       # 'val' (a validation part), 'test' (val = test part), ...
    release: Optional[Metrics]
    honest: Optional[Metrics]
    honest_note: str = ""               # why honest is None
    cross: Dict[str, Optional[Metrics]] = field(default_factory=dict)


def read_results(path: str | Path) -> RunResults:
    """Load one ``results.json``; DataError naming the file when it is unreadable or malformed."""
    return RunResults.from_dict(read_json_object(path, hint="; delete it to train this split again"), path)


def split_record(split: int, labels: Optional[int], results: RunResults, *, val_key: str = "val",
                 test_key: str = "test", val_part: str = "val", honest_note: str = "",
                 cross: Sequence[str] = ()) -> SplitRecord:
    """The row of one split from its ``results.json``.

    Args:
        val_key, test_key: the ``datasets`` sections that validate and test.
        val_part: what ``val_key`` evaluates; the honest protocol is read only when it is ``'val'``.
        honest_note: the reason the honest protocol is unavailable (when ``val_part`` is not 'val').
        cross: dataset names whose ``test_<name>`` sections were evaluated.
    """
    release = results.metrics("best", val_key, "metrics")
    honest = None
    if val_part == "val":
        honest = results.metrics("test_best_network", test_key)
        if honest is None:
            honest_note = (f"results.json has no test_best_network.{test_key} (no net_best.pth was kept: "
                           "every validation score was NaN?)")
    return SplitRecord(split=split, labels=labels, run=results.name, iterations=results.iterations,
                       seconds=results.seconds, val_part=val_part, release=release, honest=honest,
                       honest_note=honest_note,
                       cross={name: results.metrics("test_best_network", f"test_{name}") for name in cross})


def describe(values: Sequence[Optional[float]]) -> Dict[str, Any]:
    """``{"median", "mean", "std", "n"}`` of the finite values (std: sample std, ddof=1)."""
    finite = np.array([v for v in values if v is not None and math.isfinite(v)], dtype=np.float64)
    n = int(finite.size)
    return {"median": float(np.median(finite)) if n else None, "mean": float(finite.mean()) if n else None,
            "std": float(finite.std(ddof=1)) if n > 1 else None, "n": n}


def _stats(blocks: Sequence[Optional[Metrics]]) -> Dict[str, Dict[str, Any]]:
    return {m: describe([b.get(m) for b in blocks if b is not None]) for m in METRICS}


def summarize(records: Sequence[SplitRecord], *, name: str, dataset: str, config: str,
              labels: Optional[int], prompts: Optional[List[str]], cross: Sequence[str] = ()) -> Dict[str, Any]:
    """The ``summary.json`` object of a split run (schema in pyiqa/protocols/commands/run_splits.py)."""
    protocols: Dict[str, Any] = {"release": _stats([r.release for r in records])}
    summary: Dict[str, Any] = {"name": name, "dataset": dataset, "config": config, "labels": labels,
                               "prompts": prompts, "splits": [r.split for r in records], "protocols": protocols}
    honest = [r.honest for r in records if r.honest is not None]
    if honest:
        protocols["honest"] = _stats(honest)
        missing = [r.split for r in records if r.honest is None]
        if missing:
            logger.warning("honest protocol: splits %s have none (%s)", missing,
                           next(r.honest_note for r in records if r.honest is None))
    else:
        notes = sorted({r.honest_note for r in records if r.honest_note}) or ["no finished split"]
        summary["honest_unavailable"] = "; ".join(notes)
    if cross:
        summary["cross"] = {c: _stats([r.cross.get(c) for r in records]) for c in cross}
    return summary


def csv_text(records: Sequence[SplitRecord], cross: Sequence[str] = ()) -> str:
    """``splits.csv``: one row per split (blank where a protocol is unavailable)."""
    groups = [(p, p) for p in PROTOCOLS] + [(f"cross_{c}", c) for c in cross]
    header = ["split", "labels", "run", "iterations", "seconds", "val_part"]
    header += [f"{g}_{m}" for g, _ in groups for m in METRICS]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    for r in records:
        blocks = [r.release, r.honest] + [r.cross.get(c) for c in cross]
        row: List[Any] = [r.split, "" if r.labels is None else r.labels, r.run, r.iterations, r.seconds, r.val_part]
        row += ["" if b is None or b.get(m) is None else repr(b[m]) for b in blocks for m in METRICS]
        writer.writerow(row)
    return buf.getvalue()


def format_stats(stats: Dict[str, Any]) -> str:
    if not stats["n"]:
        return "n/a"
    std = "" if stats["std"] is None else f" ± {stats['std']:.4f}"
    return f"{stats['median']:.4f} ({stats['mean']:.4f}{std})"


def markdown_text(summary: Dict[str, Any]) -> str:
    """``summary.md``: the summary as a table, with what each protocol means."""
    labels = "all labels" if summary["labels"] is None else f"{summary['labels']} labels per repeat"
    lines = [f"# {summary['name']}", "",
             f"Dataset `{summary['dataset']}`, config `{summary['config']}`, prompts {summary['prompts']}, "
             f"{labels}; splits {summary['splits']}.", "",
             "Each cell: median (mean ± sample std) over the splits; n = splits with a value.", "",
             "| protocol | SRCC | PLCC | KRCC | n |", "|---|---|---|---|---|"]
    rows = dict(summary["protocols"])
    rows.update({f"cross: {k}": v for k, v in (summary.get("cross") or {}).items()})
    for label, block in rows.items():
        cells = " | ".join(format_stats(block[m]) for m in METRICS)
        lines.append(f"| {label} | {cells} | {block['srcc']['n']} |")
    lines += ["", "- **release**: the metrics at the best validation score (`best.val` of results.json). With "
              "the release's 80/20 split files validation runs on the test part, so this is the best test "
              "score seen during training: the paper's protocol, optimistic.",
              "- **honest**: net_best.pth, chosen on a validation part carved out of training, scored once "
              "on the test part (`test_best_network.test`)."]
    if "honest_unavailable" in summary:
        lines.append(f"- honest protocol not available: {summary['honest_unavailable']}")
    if summary.get("cross"):
        lines.append("- **cross**: net_best.pth on whole other datasets (`test_best_network.test_<dataset>`).")
    return "\n".join(lines) + "\n"


def write_outputs(out_dir: str | Path, records: Sequence[SplitRecord], summary: Dict[str, Any],
                  cross: Sequence[str] = ()) -> List[Path]:
    """Write ``splits.csv``, ``summary.json`` and ``summary.md`` into ``out_dir`` (atomically)."""
    out_dir = Path(out_dir)
    files = {out_dir / "splits.csv": csv_text(records, cross),
             out_dir / "summary.json": json.dumps(summary, indent=2, allow_nan=False) + "\n",
             out_dir / "summary.md": markdown_text(summary)}
    for path, text in files.items():
        write_bytes(path, text.encode("utf-8"))
    return list(files)
