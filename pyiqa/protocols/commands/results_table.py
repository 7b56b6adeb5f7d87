"""Our results beside the UniQA paper's: Markdown tables in the paper's layout and a bar chart.

    pyiqa-results-table results/     # prints the tables; writes results/TABLE.md and TABLE.png
    pyiqa-results-table results/ --out report/ --strict

Reads results/<name>/summary.json (pyiqa-run-splits) and results/zero_shot/<dataset>.json
(pyiqa-eval-zero-shot); the paper's numbers are pyiqa/protocols/paper_results.yml (package data). See
pyiqa.protocols.results_table for which run fills a cell when several fit.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

PROG = "pyiqa-results-table"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Print our results beside the UniQA paper's numbers (Tables 1, 2-3, 4, 5) with the "
                    "differences, and write TABLE.md and TABLE.png (every SRCC of ours, beside the paper's "
                    "where it has one; results from random weights flagged). A number no correlation can be "
                    "(outside [-1, 1], NaN in a summary) makes its file malformed.")
    parser.add_argument("results", type=Path, help="the results folder (holding <name>/summary.json and "
                                                   "zero_shot/<dataset>.json)")
    parser.add_argument("--out", type=Path, default=None,
                        help="where TABLE.md and TABLE.png go (default: the results folder)")
    parser.add_argument("--strict", action="store_true",
                        help="stop at the first malformed result file instead of skipping it with a warning")
    return parser


def main(argv: Optional[List[str]] = None) -> None:
    """Parse ``argv`` (default ``sys.argv[1:]``), print the tables and write TABLE.md and TABLE.png."""
    args = build_parser().parse_args(argv)
    from ..results_table import build_results_table  # matplotlib: not needed for --help
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    report = build_results_table(args.results, out_dir=args.out, strict=args.strict)
    print(report.markdown, end="")
    print(f"wrote {report.md_path} and {report.png_path}", file=sys.stderr)
