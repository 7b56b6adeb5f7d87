"""Merge MLLM descriptions and purified AVA comments into the caption JSON that train_clip reads.

    pyiqa-build-corpus --descriptions quality.jsonl aesthetics.jsonl \\
        --comments ava_kept.jsonl --root /data/images --out corpus.json --weight quality.jsonl=2

Writes corpus.json (``[{"image_path": ..., "prompt": [...]}, ...]``, sorted by image), and beside it
corpus_report.md and corpus_report.png. See train_clip.corpus.build for the weights' effect.
"""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import List, Optional

from train_clip.corpus.build import build_corpus

PROG = "pyiqa-build-corpus"
WEIGHT_HELP = (
    "how many times each text of SOURCE (an input's file name, or its path as given) is listed in its "
    "image's prompt list; repeatable; default 1. train_clip draws one caption per image uniformly from "
    "the list, so W=2 makes each of the source's texts twice as likely as a weight-1 text of the same "
    "image (it has no effect on images whose texts all come from one source)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Merge description JSONL files (pyiqa-generate-descriptions) and kept-comment\n"
                    "JSONL files (pyiqa-purify-comments) into the release's caption JSON, check that\n"
                    "every image exists under --root, and write a corpus report (Markdown + PNG).",
        epilog="inputs (one JSON object per line; invalid or torn lines are skipped with a warning):\n"
               "  descriptions  {\"image\": NAME, \"text\": TEXT, ...}\n"
               "  comments      {\"image\": NAME, \"comments\": [TEXT, ...], ...}\n"
               "  NAME is relative to --root; an image's texts from several files are merged.\n"
               "outputs: --out, <out stem>_report.md, <out stem>_report.png\n"
               "train with:  data.train: [{type: json, path: OUT, data_root: ROOT}]\n\n"
               "example:\n  pyiqa-build-corpus --descriptions quality.jsonl aesthetics.jsonl \\\n"
               "      --comments ava_kept.jsonl --root /data/images --out corpus.json --weight quality.jsonl=2",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--descriptions", nargs="+", required=True, type=Path, metavar="JSONL",
                        help="one or more description files (e.g. quality and aesthetics)")
    parser.add_argument("--comments", nargs="+", default=[], type=Path, metavar="KEPT_JSONL",
                        help="kept-comment files written by pyiqa-purify-comments (optional)")
    parser.add_argument("--root", required=True, type=Path, metavar="IMAGE_DIR",
                        help="the folder the image names are relative to; images missing there are "
                             "left out with a warning")
    parser.add_argument("--out", required=True, type=Path, metavar="CORPUS_JSON",
                        help="the caption JSON to write (atomically; the report goes beside it)")
    parser.add_argument("--weight", action="append", default=[], metavar="SOURCE=W", help=WEIGHT_HELP)
    parser.add_argument("--allow-absolute-paths", action="store_true",
                        help="accept image names that are absolute paths (images kept outside --root); "
                             "off by default, and a name climbing out of --root with '..' is always refused")
    return parser


def main(argv: Optional[List[str]] = None) -> None:
    """Parse ``argv`` (default ``sys.argv[1:]``), write the caption JSON and its report."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s", stream=sys.stderr)
    result = build_corpus(args.descriptions, args.root, args.out, comments=args.comments,
                          weights=args.weight, allow_absolute=args.allow_absolute_paths)
    stats = result.stats
    print(f"{result.out}: {stats['images']} images, {stats['entries']} prompt entries, "
          f"{stats['multi_source']} with text from several sources, {len(result.missing)} left out "
          f"(image missing)")
    for name, s in stats["sources"].items():
        print(f"  {name:<24} {s['kind']:<12} x{s['weight']}  {s['images']} images, {s['texts']} texts, "
              f"{s['mean']:.1f} words on average, {s['draw_share']:.1%} of caption draws")
    print(f"report: {result.report_md}, {result.report_png}")
    print(f"train_clip source: {{type: json, path: {result.out}, data_root: {args.root}}}")

