"""``pyiqa`` command line: score images with a named metric, list the metrics, install trained weights.

    pyiqa uniqa -t photo.jpg
    pyiqa uniqa -t photos/ -o scores.csv --precision auto --workers 4
    pyiqa --list
    pyiqa install-weights uniqa-koniq experiments/UniQA_KonIQ_split1/models/net_best.pth

Exit status: 0 all images scored; 1 some files could not be read (reported and skipped, the rest are
scored and written); 2 bad usage, unknown metric, missing weights or no images.
"""
from __future__ import annotations

import argparse
import csv
import logging
import os
import sys
from pathlib import Path
from typing import List, Optional, Sequence, TextIO

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE = 0, 1, 2
logger = logging.getLogger("pyiqa.cli")


def _score_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pyiqa", description="Score image quality with UniQA metrics (higher = better).",
        epilog="Other commands: 'pyiqa install-weights NAME CHECKPOINT' installs a trained adapter. "
               "Weights are looked up in $PYIQA_WEIGHTS_DIR, then $TORCH_HOME/hub/pyiqa.")
    p.add_argument("metric", nargs="?", help="metric name (see --list), e.g. uniqa")
    p.add_argument("--list", action="store_true", help="list the metrics and their weight files")
    p.add_argument("-t", "--target", help="an image file or a folder of images")
    p.add_argument("-o", "--output", help="CSV file to write (image,score); default: stdout")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16", "auto"],
                   help="weights dtype of the frozen backbone (default fp32; auto: bf16 only where fast)")
    p.add_argument("--batch-size", type=int, default=None,
                   help="images per forward pass (default 4 on CPU, 32 on CUDA)")
    p.add_argument("--workers", type=int, default=None,
                   help="decoding processes (default: min(4, cores / 2), 0 for a single file)")
    p.add_argument("--backbone", default=None, help="path of UniQA_weight.pt (or 'random' for demos)")
    p.add_argument("--adapter", default=None, help="trained adapter checkpoint of an adapter metric")
    p.add_argument("--crops", default="random10", help="test-crop protocol (default: random10, seeded)")
    p.add_argument("--num-crops", type=int, default=10, help="crops per image (default 10)")
    p.add_argument("--max-side", type=int, default=4096,
                   help="downscale images whose longer side exceeds this (default 4096; 0: never)")
    p.add_argument("--max-image-pixels", type=int, default=None,
                   help="raise Pillow's decompression-bomb limit for non-JPEG images (0: no limit)")
    p.add_argument("-r", "--recursive", action="store_true", help="also score images in subfolders")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.add_argument("-v", "--verbose", action="store_true", help="log more")
    return p


def _install_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="pyiqa install-weights",
        description="Check a trained adapter checkpoint against a metric and copy it (atomically) "
                    "into the weights folder under the metric's file name.")
    p.add_argument("metric", help="adapter metric name, e.g. uniqa-koniq")
    p.add_argument("checkpoint", help="checkpoint written by training, e.g. .../models/net_best.pth")
    p.add_argument("--weights-dir", default=None,
                   help="target folder (default: first writable of $PYIQA_WEIGHTS_DIR, "
                        "$TORCH_HOME/hub/pyiqa)")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``pyiqa`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    from .utils.errors import PyiqaError
    try:
        if argv and argv[0] == "install-weights":
            return _install(_install_parser().parse_args(argv[1:]))
        parser = _score_parser()
        args = parser.parse_args(argv)
        _setup_logging(args.verbose)
        if args.list:
            return _list(sys.stdout)
        if not args.metric or not args.target:
            parser.print_usage(sys.stderr)
            print("pyiqa: error: give a metric and -t IMAGE_OR_FOLDER, or --list", file=sys.stderr)
            return EXIT_USAGE
        return _score(args)
    except PyiqaError as err:
        print(f"pyiqa: error: {err}", file=sys.stderr)
        return EXIT_USAGE


def _setup_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, stream=sys.stderr,
                        format="%(levelname)s %(name)s: %(message)s")


def _list(out: TextIO) -> int:
    """One line per metric with its weight files' status; imports neither torch nor open_clip (the
    card table and the folder lookup are torch-free), so it answers in well under a second."""
    from .archs.model_cards import MODEL_CARDS, list_models
    from .inference.weight_lookup import find_weight
    for name in list_models():
        card = MODEL_CARDS[name]
        backbone = find_weight(card.backbone_file)
        adapter = find_weight(card.adapter_file) if card.adapter_file else None
        status = "ready" if backbone and (adapter or not card.adapter_file) else "missing: " + ", ".join(
            f for f, found in ((card.backbone_file, backbone), (card.adapter_file, adapter))
            if f and not found)
        lo, hi = card.score_range
        better = f"{'lower' if card.lower_better else 'higher'} better in [{lo:g}, {hi:g}]"
        out.write(f"{name:<14} {better:<26} {card.description}  [{status}]\n")
    return EXIT_OK


def _install(args: argparse.Namespace) -> int:
    _setup_logging(False)
    from .inference import get_card, install_weights
    target = install_weights(get_card(args.metric), args.checkpoint, args.weights_dir)
    print(f"Installed {args.checkpoint} -> {target}")
    return EXIT_OK


def _targets(target: Path, recursive: bool) -> List[Path]:
    from .inference import list_images
    from .utils.errors import DataError
    if target.is_dir():
        paths = list_images(target, recursive)
        if not paths:
            raise DataError(f"No image files in folder '{target}' (looked for the extensions "
                            ".jpg .jpeg .png .bmp .tif .tiff .webp ...).")
        return paths
    if not target.exists():
        raise DataError(f"Target '{target}' does not exist.")
    return [target]


def _score(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from .inference import create_metric, get_card
    get_card(args.metric)  # an unknown name fails before any file is listed
    if args.max_image_pixels is not None:  # the user's explicit opt-in, this process only
        from PIL import Image
        Image.MAX_IMAGE_PIXELS = args.max_image_pixels or None
    target = Path(args.target)
    paths = _targets(target, args.recursive)
    workers = args.workers
    if workers is None:
        workers = 0 if len(paths) == 1 else max(1, min(4, (os.cpu_count() or 2) // 2))
    metric = create_metric(args.metric, device=args.device, backbone=args.backbone,
                           pretrained_model_path=args.adapter, precision=args.precision,
                           crops=args.crops, num_crops=args.num_crops,
                           max_side=args.max_side or None, batch_size=args.batch_size)
    out = open(args.output, "w", newline="") if args.output else sys.stdout
    failed = 0
    try:
        writer = csv.writer(out)
        writer.writerow(["image", "score"])
        for path, score, reason in metric.score_files(paths, workers=workers,
                                                      progress=not args.quiet):
            name = path.relative_to(target).as_posix() if target.is_dir() else str(path)
            if reason is not None:
                failed += 1
                tqdm.write(f"FAILED {name}: {reason}", file=sys.stderr)
                continue
            writer.writerow([name, f"{score:.6f}"])
            out.flush()
    finally:
        if out is not sys.stdout:
            out.close()
    scored = len(paths) - failed
    print(f"pyiqa: scored {scored} of {len(paths)} images with {metric.metric_name}"
          + (f"; {failed} could not be read (listed above)" if failed else "")
          + (f"; wrote {args.output}" if args.output else ""), file=sys.stderr)
    return EXIT_SOME_FAILED if failed else EXIT_OK
