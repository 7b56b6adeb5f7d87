"""Describe a dataset's images with an MLLM served behind an OpenAI-compatible endpoint (UniQA's corpus).

    pyiqa-generate-descriptions --meta datasets/meta_info/meta_info_KonIQ10kDataset.csv \\
        --root datasets/koniq10k/512x384 --task quality --mos-range 0 100 \\
        --endpoint http://localhost:8000/v1 --model Qwen/Qwen2-VL-7B-Instruct --concurrency 16 \\
        --out corpus/koniq_quality.jsonl

Re-run the same command after a crash or Ctrl-C: it skips what is in --out and retries the failures
(``<out>.failures.jsonl``). A dry run without a model: start the repository's stub server
(``python scripts/mllm_stub_server.py``) and pass ``--endpoint http://127.0.0.1:8000/v1 --model stub``
(its replies are placeholders, not descriptions).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, List, Optional

from pyiqa.utils.logger import setup_logging

if TYPE_CHECKING:
    from train_clip.corpus.describe import RunSummary

PROG = "pyiqa-generate-descriptions"

DEFAULTS = dict(concurrency=8, max_side=512, jpeg_quality=90, api_key_env="OPENAI_API_KEY", timeout=120.0,
                retries=5, backoff=1.0, max_tokens=200, temperature=0.2, max_consecutive_failures=20)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Ask an MLLM (any OpenAI-compatible chat-completions endpoint with image input: vLLM, "
                    "SGLang, LMDeploy, Ollama, llama.cpp, a hosted API) to describe each image's quality "
                    "or aesthetics, told the image's human rating level (MOS cut into five equal-width "
                    "levels bad/poor/fair/good/perfect) so the text agrees with it. Results are appended "
                    "to --out as they arrive; a re-run skips what is done and retries the failures.",
        epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    d = DEFAULTS
    data = p.add_argument_group("data")
    data.add_argument("--meta", required=True, type=Path, help="meta CSV: image name and MOS per row")
    data.add_argument("--root", required=True, type=Path, help="folder the CSV's image names are relative to")
    data.add_argument("--image-column", help="image column of the CSV (default: the first)")
    data.add_argument("--mos-column", help="MOS column of the CSV (default: the second; pyiqa's "
                      "reference-first CSVs: --image-column dist_name --mos-column mos)")
    data.add_argument("--facts-column", action="append", default=[], metavar="COLUMN", dest="facts_columns",
                      help="CSV column whose value is told to the model (e.g. distortion_type); repeatable")
    data.add_argument("--task", required=True, choices=["quality", "aesthetics"], help="what to describe")
    data.add_argument("--mos-range", required=True, nargs=2, type=float, metavar=("LOW", "HIGH"),
                      help="the dataset's MOS scale, low first (e.g. 0 100 for pyiqa's KonIQ-10k CSV, 1 5 "
                           "for KADID-10k); values outside are clipped with a warning")
    data.add_argument("--lower-better", action="store_true", help="a smaller MOS is better (DMOS)")
    data.add_argument("--prompts", type=Path, default=None,
                      help="prompt templates YAML (default: the shipped descriptions/prompts.yml)")
    data.add_argument("--out", required=True, type=Path, help="descriptions JSONL (appended to)")
    data.add_argument("--allow-absolute-paths", action="store_true",
                      help="accept image names that are absolute paths (images kept outside --root); off by "
                           "default, and a name climbing out of --root with '..' is always refused")
    server = p.add_argument_group("endpoint")
    server.add_argument("--endpoint", required=True, help="base URL, e.g. http://localhost:8000/v1")
    server.add_argument("--model", required=True, help="model name as the server knows it")
    server.add_argument("--api-key-env", default=d["api_key_env"], metavar="VAR",
                        help="environment variable holding the API key; unset: a placeholder is sent, "
                             "fine for local servers (default: %(default)s)")
    server.add_argument("--concurrency", type=int, default=d["concurrency"], metavar="N",
                        help="requests in flight, 1 to 256 (default: %(default)s)")
    server.add_argument("--timeout", type=float, default=d["timeout"], metavar="S",
                        help="seconds per request before it counts as timed out (default: %(default)s)")
    server.add_argument("--retries", type=int, default=d["retries"],
                        help="retries of a request after 429/5xx/time-out/connection errors, with "
                             "exponential back-off and jitter (default: %(default)s)")
    server.add_argument("--backoff", type=float, default=d["backoff"], metavar="S",
                        help="first back-off in seconds, doubled per retry, capped at 60 (default: %(default)s)")
    server.add_argument("--max-tokens", type=int, default=d["max_tokens"],
                        help="cap on output tokens per description, 1 to 32768 (default: %(default)s)")
    server.add_argument("--temperature", type=float, default=d["temperature"],
                        help="sampling temperature, 0 to 2 (default: %(default)s)")
    server.add_argument("--max-side", type=int, default=d["max_side"], metavar="PX",
                        help="longest image side sent, in pixels, 16 to 8192 (default: %(default)s)")
    server.add_argument("--jpeg-quality", type=int, default=d["jpeg_quality"], metavar="Q",
                        help="JPEG quality of the image sent, 1 to 95 (default: %(default)s)")
    run = p.add_argument_group("run")
    run.add_argument("--max-consecutive-failures", type=int, default=d["max_consecutive_failures"],
                     metavar="N", help="stop after N failed images in a row (server down, model without "
                     "image input); 0: never (default: %(default)s)")
    run.add_argument("--limit", type=int, default=None, metavar="N",
                     help="describe at most N (>= 1) more images this run (a trial); default: all")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: Optional[List[str]] = None) -> "RunSummary":
    """Parse ``argv`` (default ``sys.argv[1:]``) and describe the images; exit status 130 when
    interrupted. Returns the run's summary (the console command exits 1 when images failed)."""
    args = build_parser().parse_args(argv)
    setup_logging(logger_names=("pyiqa", "train_clip"))
    from train_clip.corpus.describe import DescribeSettings, failures_path, run
    from train_clip.corpus.prompts import DEFAULT_PROMPTS
    settings = DescribeSettings(
        meta=args.meta, root=args.root, task=args.task, mos_range=tuple(args.mos_range),
        endpoint=args.endpoint, model=args.model, out=args.out, lower_better=args.lower_better,
        concurrency=args.concurrency, prompts=args.prompts or DEFAULT_PROMPTS,
        image_column=args.image_column, mos_column=args.mos_column, facts_columns=args.facts_columns,
        max_side=args.max_side, jpeg_quality=args.jpeg_quality, api_key_env=args.api_key_env,
        timeout=args.timeout, retries=args.retries, backoff=args.backoff, max_tokens=args.max_tokens,
        temperature=args.temperature, max_consecutive_failures=args.max_consecutive_failures,
        limit=args.limit, progress=not args.no_progress, allow_absolute=args.allow_absolute_paths)
    summary = run(settings)
    failed = sum(summary.failures.values())
    rate = summary.described / summary.seconds if summary.seconds > 0 else 0.0
    print(f"{summary.described} described ({rate:.2f}/s), {failed} failed, {summary.already_done} already "
          f"done, of {summary.images} images -> {args.out}"
          + (f"; failures in {failures_path(args.out)}" if failed else ""))
    if summary.interrupted:
        sys.exit(130)
    return summary

