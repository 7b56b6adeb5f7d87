"""``pyiqa-prepare-dataset``: turn a downloaded IQA/IAA dataset into the meta CSV, splits and few-label
subsets the configs read.

    pyiqa-prepare-dataset tid2013 --root /data/tid2013            # -> ./datasets/meta_info/
    pyiqa-prepare-dataset koniq10k --root /data/koniq10k --out my_meta --few-label 50 100

``--help`` lists every dataset with what must be under ``--root``. See pyiqa.data.prepare.pipeline for
the files written.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

from ...utils.entry import run_cli
from . import PREPARERS, Report, prepare
from .split_maker import FEW_LABELS

PROG = "pyiqa-prepare-dataset"


def build_parser() -> argparse.ArgumentParser:
    lines = [f"  {p.name:<10} {p.title}: {p.expects}" for p in PREPARERS.values()]
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Write pyiqa meta CSVs, 10 seeded 80/20 and 70/10/20 splits (by reference image for "
                    "synthetic-distortion sets), the official split and few-label subsets.",
        epilog="datasets (what --root must hold):\n" + "\n".join(sorted(lines)),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", choices=sorted(PREPARERS), metavar="NAME",
                        help=f"one of: {', '.join(sorted(PREPARERS))}")
    parser.add_argument("--root", required=True, type=Path, help="the dataset folder as downloaded")
    parser.add_argument("--out", default=Path("datasets/meta_info"), type=Path,
                        help="where the CSV and pickles go (default: datasets/meta_info, under the "
                             "current folder)")
    parser.add_argument("--few-label", nargs="*", type=int, default=None, metavar="N",
                        help="few-label subset sizes, each at most the train part of the 80/20 splits "
                             "(default: 50 100 200, those too large for the dataset skipped); none: "
                             "--few-label")
    return parser


def prepare_main(argv: Optional[List[str]] = None) -> Report:
    """Parse ``argv`` (default ``sys.argv[1:]``), prepare the dataset and print what was written."""
    parser = build_parser()
    args = parser.parse_args(argv)
    required = args.few_label is not None
    few_labels = args.few_label if required else list(FEW_LABELS)
    if any(n < 1 for n in few_labels):
        parser.error(f"--few-label sizes must be >= 1, got {few_labels}")
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    report = prepare(args.name, args.root, args.out, few_labels=few_labels, few_labels_required=required)
    print(f"{report.name}: {report.rows} images, {len(report.missing)} missing; "
          f"{len(report.written)} of {len(report.files)} files written to {args.out}")
    for path in report.files:
        print(f"  {path}")
    print(f"set dataroot_target: {report.dataroot}")
    return report


def main(argv: Optional[List[str]] = None) -> None:
    """The console entry point: a user error ends with its one-line message and exit status 2."""
    run_cli(lambda: prepare_main(argv))
