"""Time per training step and per epoch of the adapter loops, after a warm-up epoch: standard, cached
(``train.feature_cache``) and cached with ``train.compile``.

The feature cache turns an epoch into a few hundred steps of the score head on stored embeddings; on a GPU
such a step is bound by kernel launches, which ``train.compile`` (torch.compile; CUDA graphs on CUDA)
attacks. This script builds the trainer of ``options/train/UniQA/demo.yml`` (the embedded demo images)
for each loop, runs one warm-up epoch (compilation, caches, allocator) and then times whole epochs of
``IQAModel.train_step`` over the trainer's own training feed; validation is left out. It prints ms per
step, s per epoch and each loop's epoch speed-up over the standard one.

Backbones are RANDOM (timing only): ``--backbone random`` is the ViT-B/16 architecture (D 512), the
default ``random-tiny`` a small tower. Figures are ratios measured in one run on this machine.

  python scripts/benchmark_cached_step.py                       # CPU: tiny tower, 3 timed epochs
  python scripts/benchmark_cached_step.py --backbone random --epochs 20   # GPU figures
"""
from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, Optional, Sequence

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

LOOPS = {"standard": [], "cached": ["train.feature_cache=true"],
         "compiled": ["train.feature_cache=true", "train.compile=true"]}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_loop(loop: str, args: argparse.Namespace, work: Path) -> Dict[str, float]:
    """Build the demo trainer for ``loop`` and time ``args.epochs`` epochs of steps after a warm-up one."""
    from pyiqa.train import Trainer
    from pyiqa.engine.run import parse_run_args
    overrides = [f"name=bench_{loop}", f"network.backbone={args.backbone}", f"precision={args.precision}",
                 f"train.views_per_image={args.views}" if loop != "standard" else None,
                 f"train.feature_cache_dir={work / 'cache'}" if loop != "standard" else None,
                 "logger.use_tb_logger=false", *LOOPS[loop],
                 *(f"datasets.{s}.dataroot_target={work / 'demo'}" for s in ("train", "val", "test"))]
    run_args = parse_run_args(["-opt", "UniQA/demo", "--root", str(work), "--force_yml",
                               *[o for o in overrides if o]], "benchmark", "")
    trainer = Trainer(run_args)
    model, feed, device = trainer.model, trainer.train_loader, trainer.device
    steps = 0

    def epoch() -> None:
        nonlocal steps
        for batch in feed:
            steps += 1
            model.train_step(batch, steps, step_scheduler=False)

    tic = time.perf_counter()
    epoch()  # warm-up: compilation, allocator, worker start-up
    _sync(device)
    warm_s = time.perf_counter() - tic
    warm_steps, tic = steps, time.perf_counter()
    for _ in range(args.epochs):
        epoch()
    _sync(device)
    seconds = time.perf_counter() - tic
    trainer.runtime.close()
    timed = steps - warm_steps
    return {"ms_per_step": 1000 * seconds / timed, "epoch_s": seconds / args.epochs, "steps": timed // args.epochs,
            "warmup_s": warm_s, "device": str(device), "precision": model.precision}


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--backbone", default="random-tiny", help="random-tiny, or random (ViT-B/16 architecture)")
    parser.add_argument("--epochs", type=int, default=3, help="timed epochs per loop (after one warm-up epoch)")
    parser.add_argument("--views", type=int, default=2, help="cached views per image (a step's cost does not "
                                                             "depend on it; the cache build does)")
    parser.add_argument("--precision", default="auto")
    parser.add_argument("--loops", nargs="+", choices=list(LOOPS), default=list(LOOPS))
    parser.add_argument("--work", help="folder for the demo images and the cache (default: a temporary one)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        results = {loop: time_loop(loop, args, work) for loop in args.loops}
    first = next(iter(results.values()))
    print(f"\nadapter training steps, demo images (backbone {args.backbone}: RANDOM weights, timing only), "
          f"{first['device']}, frozen tower {first['precision']}, {args.epochs} timed epochs after a warm-up one")
    print("| loop | steps/epoch | ms/step | s/epoch | warm-up epoch s | epoch speed-up over standard |")
    print("|---|---|---|---|---|---|")
    base = results.get("standard", {}).get("epoch_s")
    for loop, r in results.items():
        ratio = f"{base / r['epoch_s']:.0f}x" if base else "-"
        print(f"| {loop} | {r['steps']} | {r['ms_per_step']:.3f} | {r['epoch_s']:.4f} | {r['warmup_s']:.2f} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
