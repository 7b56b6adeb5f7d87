"""Zero-shot UniQA on whole datasets: SRCC/PLCC/KRCC of the ``uniqa`` (multi-cue ensemble) and
``uniqa-single`` (single cue) model cards, no training.

    pyiqa-eval-zero-shot --datasets livec koniq10k agiqa3k
    pyiqa-eval-zero-shot --datasets livec --dataroot livec=/data/livec/Images --meta-dir /data/meta
    pyiqa-eval-zero-shot --datasets demo --backbone random-tiny --limit 20   # smoke run, no download

Each dataset is read as its shipped test config ``test/UniQA/<config>.yml`` describes it (koniq10k:
koniq.yml), with the split keys dropped: every image is scored (AVA: its official test part). ``demo`` is
the embedded demo data, built on first use. Writes ``<out>/<dataset>.json`` and
``<out>/<dataset>_predictions.csv``; a dataset whose JSON is there (same backbone and --limit) is
skipped, an interrupted one is scored again from its start. See pyiqa/protocols/zero_shot.py.
"""
from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import List, Optional

from ..zero_shot import (DATASETS, DEFAULT_MODELS, METRICS, DatasetResult, ZeroShotRequest, evaluate,
                         random_note)
from ...utils.logger import setup_logging
from ...utils.options import parse_name_paths

PROG = "pyiqa-eval-zero-shot"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0],
                                epilog=f"datasets: {', '.join(DATASETS)}")
    p.add_argument("--datasets", nargs="+", required=True, metavar="NAME",
                   help="dataset names, as pyiqa-prepare-dataset names them (or 'demo')")
    p.add_argument("--models", nargs="+", default=list(DEFAULT_MODELS), metavar="CARD",
                   help=f"model cards to evaluate (default: {' '.join(DEFAULT_MODELS)})")
    p.add_argument("--dataroot", action="append", default=[], metavar="NAME=PATH",
                   help="image folder of a dataset, replacing its config's dataroot_target (repeatable); it "
                        "must exist and hold the dataset (for demo: a complete build), nothing is "
                        "written into it")
    p.add_argument("--meta-dir", type=Path, default=None, metavar="DIR",
                   help="existing folder of the meta CSVs (default: the configs' ./datasets/meta_info)")
    p.add_argument("--backbone", default=None, metavar="FILE",
                   help="UniQA_weight.pt (default: $PYIQA_WEIGHTS_DIR, then $TORCH_HOME/hub/pyiqa); "
                        "'random-tiny': untrained weights, for tests only")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:N (default: cuda if available)")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16", "fp16"],
                   help="precision of the frozen CLIP (default auto: bf16 where it is fast, else fp32)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="images per forward pass, 10 crops each (default 2 on CPU, 32 on CUDA)")
    p.add_argument("--workers", type=int, default=None,
                   help="image-decoding processes (default: one per core beyond the first, at most 4)")
    p.add_argument("--limit", type=int, default=None, metavar="N",
                   help="score only the first N images of each dataset (a quick look)")
    p.add_argument("--out", type=Path, default=Path("results/zero_shot"),
                   help="output folder (default results/zero_shot)")
    return p


def format_table(results: List[DatasetResult], models: List[str]) -> str:
    """One line per dataset and model: images, SRCC, PLCC, KRCC (and whether it was done earlier)."""
    lines = [f"{'dataset':<10} {'images':>7}  {'model':<14} " + " ".join(f"{m.upper():>7}" for m in METRICS)]
    for res in results:
        for model in models:
            values = res.summary["models"][model]
            cells = " ".join(f"{values[m]:>7.4f}" if not math.isnan(values[m]) else f"{'nan':>7}"
                             for m in METRICS)
            done = "  (done earlier: skipped)" if res.skipped else ""
            lines.append(f"{res.name:<10} {res.summary['images']:>7}  {model:<14} {cells}{done}")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> List[DatasetResult]:
    """Parse ``argv`` (default ``sys.argv[1:]``), score the datasets, print the table; the results."""
    args = build_parser().parse_args(argv)
    setup_logging(None)
    req = ZeroShotRequest(datasets=args.datasets, models=args.models, backbone=args.backbone,
                          device=args.device, precision=args.precision, batch_size=args.batch_size,
                          workers=args.workers, limit=args.limit, out=args.out,
                          dataroots=parse_name_paths(args.dataroot, "--dataroot"), meta_dir=args.meta_dir)
    results = evaluate(req)
    notes = sorted({random_note(r.summary["backbone"]) for r in results if r.summary.get("random_weights")})
    print()
    for note in notes:
        print(f"!!! {note} !!!")
    print(format_table(results, list(args.models)))
    for res in results:
        print(f"{res.name}: {res.json_path}" + (" (done earlier: skipped; delete it to recompute)"
                                                 if res.skipped else ""))
    return results
