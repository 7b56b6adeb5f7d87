"""Our results beside the UniQA paper's: Markdown tables in the paper's layout and a bar chart.

    python scripts/results_table.py results/     # prints the tables; writes results/TABLE.md and TABLE.png
    python scripts/results_table.py results/ --out report/ --strict

Reads results/<name>/summary.json (scripts/run_splits.py) and results/zero_shot/<dataset>.json
(scripts/eval_zero_shot.py); the paper's numbers are pyiqa/protocols/paper_results.yml. See
pyiqa.protocols.results_table for which run fills a cell when several fit.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

from pyiqa.protocols.results_table import build_results_table
from pyiqa.utils.entry import run_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description="Print our results beside the UniQA paper's numbers (Tables 1, 2-3, 4, 5) with the "
                    "differences, and write TABLE.md and TABLE.png (ours vs the paper's SRCC).")
    parser.add_argument("results", type=Path, help="the results folder (holding <name>/summary.json and "
                                                   "zero_shot/<dataset>.json)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where TABLE.md and TABLE.png go (default: the results folder)")
    parser.add_argument("--strict", action="store_true",
                        help="stop at the first malformed result file instead of skipping it with a warning")
    return parser


def main(argv: Optional[List[str]] = None) -> None:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    report = build_results_table(args.results, out_dir=args.out, strict=args.strict)
    print(report.markdown, end="")
    print(f"wrote {report.md_path} and {report.png_path}", file=sys.stderr)


if __name__ == "__main__":
    run_cli(main)
