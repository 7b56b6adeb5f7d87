"""Peak memory of building a UniQA metric and of scoring a folder with the ``pyiqa`` command.

Prints, for bf16 and fp32 on the CPU, each figure measured in a fresh process:

* build: the peak RSS (VmHWM) above the import baseline once ``pyiqa.create_metric('uniqa')`` has
  returned (target: <= +350 MB in bf16; an fp32 ViT-B/16 image tower alone is 344 MB, so fp32 is
  only reported);
* folder: the peak RSS above the import baseline of ``pyiqa uniqa -t <folder>`` (the CLI's
  ``main(argv)`` run in a wrapper process that first imports what it imports) over a folder of
  1024x768 JPEGs with the default batch (target: <= +600 MB in bf16), and the decoding workers'
  largest peak RSS.

The import baseline is the peak right after importing torch and pyiqa's inference API (which imports
open_clip and torchvision): importing code is not building a metric. Its own cost is printed too.

Real weights are never downloaded: without ``--backbone`` a RANDOM-weight ViT-B/16 is written in the
release file's format (fp16 tensors, OpenAI keys), so sizes, loading path and memory are those of
UniQA_weight.pt; the scores are not quality.

    python scripts/benchmark_memory.py                        # 64 images, bf16 and fp32
    python scripts/benchmark_memory.py --images 16 --precisions bf16 --backbone UniQA_weight.pt
"""
from __future__ import annotations

import argparse
import json
import math
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

TARGET_BUILD_MB = 350  # bf16
TARGET_FOLDER_MB = 600  # bf16

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark_inference import peak_rss_mb  # noqa: E402  (VmHWM: this process's own peak)


# ------------------------------------------------------------------------------------ children
def child_build(backbone: str, precision: str) -> Dict[str, Any]:
    """Peak RSS of ``create_metric('uniqa')`` above the imports, in this (fresh) process."""
    import torch  # noqa: F401

    import pyiqa
    pyiqa.create_metric  # noqa: B018  (resolving it imports the inference API: open_clip, torchvision)
    base = peak_rss_mb()
    metric = pyiqa.create_metric("uniqa", device="cpu", backbone=backbone, precision=precision)
    return {"base_mb": base, "build_mb": peak_rss_mb() - base,
            "text_tower_freed": getattr(metric.net.clip, "transformer", None) is None}


def child_folder(backbone: str, precision: str, folder: str, output: str,
                 batch_size: Optional[int]) -> Dict[str, Any]:
    """Peak RSS of ``pyiqa uniqa -t folder`` above the imports, run as ``pyiqa.cli.main`` here."""
    import torch  # noqa: F401

    import pyiqa
    import pyiqa.cli
    import pyiqa.inference.batch  # noqa: F401  (the DataLoader machinery scoring a folder imports)
    pyiqa.create_metric  # noqa: B018
    base = peak_rss_mb()
    argv = ["uniqa", "-t", folder, "--precision", precision, "--backbone", backbone, "-o", output, "-q"]
    if batch_size:
        argv += ["--batch-size", str(batch_size)]
    start = time.perf_counter()
    code = pyiqa.cli.main(argv)
    seconds = time.perf_counter() - start
    from pyiqa.inference.metric import DEFAULT_BATCH
    return {"exit": code, "folder_mb": peak_rss_mb() - base, "seconds": seconds,
            "workers_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
            "batch_size": batch_size or DEFAULT_BATCH["cpu"],
            "scored": max(0, len(Path(output).read_text().splitlines()) - 1)}


# ------------------------------------------------------------------------------------ set-up
def write_random_vit(path: Path) -> Path:
    """A RANDOM ViT-B/16 in UniQA_weight.pt's format (fp16, OpenAI keys, metadata ints)."""
    from pyiqa.archs.clip_backbone import save_random_backbone
    return save_random_backbone(path, config="vit-b-16")


def make_images(root: Path, n: int, width: int = 1024, height: int = 768) -> None:
    """n JPEGs of one smooth synthetic scene with varied noise and blur."""
    import numpy as np
    from PIL import Image, ImageFilter
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:height, 0:width] / width
    base = np.stack([np.sin(2 * math.pi * (3 * xx + 2 * yy)), np.cos(2 * math.pi * (5 * xx - yy)),
                     np.sin(2 * math.pi * 7 * xx * yy)], -1) * 0.35 + 0.5
    for k in range(n):
        img = np.clip(base + rng.normal(0, 0.04 * (k % 5), base.shape), 0, 1)
        pil = Image.fromarray((img * 255).astype(np.uint8)).filter(ImageFilter.GaussianBlur(k % 4))
        pil.save(root / f"img{k:03d}.jpg", quality=90 - 5 * (k % 6))


def run_child(*args: str) -> Dict[str, Any]:
    """Run one measurement in a fresh process; its figures are the JSON on its last stdout line."""
    run = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True)
    if run.returncode != 0:
        sys.stderr.write(run.stderr)
        raise SystemExit(f"measuring {args} failed (exit {run.returncode})")
    return json.loads(run.stdout.strip().splitlines()[-1])


def spread(values: List[float]) -> str:
    """'+275 MB', or over repeats '+327..+537 MB (median +437)'."""
    if len(values) == 1:
        return f"{values[0]:+.0f} MB"
    return f"{min(values):+.0f}..{max(values):+.0f} MB (median {statistics.median(values):+.0f})"


def verdict(values: List[float], target: Optional[int]) -> str:
    if target is None:
        return ""
    return f" ({'ok' if max(values) <= target else 'ABOVE'} target +{target})"


def measure(args: argparse.Namespace, backbone: str, folder: Path, tmp: Path, tag: str) -> None:
    """Print the build and folder figures of each precision, each run in fresh processes."""
    for precision in args.precisions.split(","):
        bf16 = precision == "bf16"
        builds = [run_child("--child", "build", "--backbone", backbone, "--precision", precision)
                  for _ in range(args.repeat)]
        mb = [b["build_mb"] for b in builds]
        target = verdict(mb, TARGET_BUILD_MB if bf16 else None)
        print(f"{precision}: create_metric('uniqa') peak {spread(mb)} above the baseline "
              f"({builds[0]['base_mb']:.0f} MB after the imports){target}; "
              f"text tower freed: {all(b['text_tower_freed'] for b in builds)}{tag}")
        if args.no_folder:
            continue
        cmd = ["--child", "folder", "--backbone", backbone, "--precision", precision, "--folder", str(folder),
               "--output", str(tmp / f"scores_{precision}.csv")]
        if args.batch_size:
            cmd += ["--batch-size", str(args.batch_size)]
        runs = [run_child(*cmd) for _ in range(args.repeat)]
        mb = [r["folder_mb"] for r in runs]
        seconds = statistics.median(r["seconds"] for r in runs)
        print(f"{precision}: pyiqa uniqa -t <{args.images} JPEGs 1024x768>, batch {runs[0]['batch_size']}: "
              f"peak {spread(mb)} above the baseline{verdict(mb, TARGET_FOLDER_MB if bf16 else None)}; "
              f"{runs[0]['scored']} scored in {seconds:.0f} s, exit {runs[0]['exit']}; decoding workers' "
              f"largest peak RSS {max(r['workers_mb'] for r in runs):.0f} MB (pages shared with the main "
              f"process counted){tag}")


# ------------------------------------------------------------------------------------ main
def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", default=None,
                   help="an OpenAI-format ViT CLIP file (default: a RANDOM ViT-B/16 written to a temp dir)")
    p.add_argument("--images", type=int, default=64, help="1024x768 JPEGs in the folder (default 64)")
    p.add_argument("--precisions", default="bf16,fp32", help="comma list (default bf16,fp32)")
    p.add_argument("--batch-size", type=int, default=None, help="folder run batch (default: the CLI's)")
    p.add_argument("--repeat", type=int, default=1,
                   help="fresh processes per figure (the allocator's slack varies from run to run)")
    p.add_argument("--no-folder", action="store_true", help="only measure building the metric")
    p.add_argument("--child", choices=("build", "folder"), help=argparse.SUPPRESS)
    p.add_argument("--precision", help=argparse.SUPPRESS)
    p.add_argument("--folder", help=argparse.SUPPRESS)
    p.add_argument("--output", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child == "build":
        print(json.dumps(child_build(args.backbone, args.precision)))
        return 0
    if args.child == "folder":
        print(json.dumps(child_folder(args.backbone, args.precision, args.folder, args.output,
                                      args.batch_size)))
        return 0
    with tempfile.TemporaryDirectory(prefix="pyiqa_mem_") as tmp:
        tmp = Path(tmp)
        backbone, tag = args.backbone, ""
        if backbone is None:
            backbone, tag = str(write_random_vit(tmp / "UniQA_weight.pt")), " [RANDOM-weight ViT-B/16]"
            print("Backbone: a RANDOM-weight ViT-B/16 of the real size in UniQA_weight.pt's file format "
                  "(fp16, OpenAI keys): memory is the real model's; the scores are not quality.")
        else:
            print(f"Backbone: {backbone}")
        print("Peak RSS (VmHWM) above the peak right after importing torch and pyiqa's inference API; "
              f"each figure from fresh processes ({args.repeat} each).")
        folder = tmp / "images"
        folder.mkdir()
        if not args.no_folder:
            make_images(folder, args.images)
        measure(args, backbone, folder, tmp, tag)
    return 0


if __name__ == "__main__":
    sys.exit(main())
