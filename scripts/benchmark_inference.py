"""Inference speed and memory of ``pyiqa.create_metric('uniqa')`` against the floor of its protocol.

For a 512x384 JPEG scored with the default 10 test crops, per precision (fp32 and bf16 on CPU; fp16 and
bf16 on CUDA when present) it prints:

* floor: the bare image tower ``clip.encode_image`` on that image's 10 crops (already decoded, cropped,
  normalised and on the device, in the same precision): the least any implementation of the protocol
  can spend on this machine;
* single: ``metric(path)`` one image at a time (decode, crop, normalise, forward, score), and its ratio
  to the floor (target <= 1.15);
* folder: ``metric.score_files`` over a folder (decoding in worker processes, overlapped, crops of
  ``--batch-size`` images per forward pass), seconds per image and ratio to the floor;
* memory, per precision in a fresh process: the peak RSS increment (VmHWM) over the peak right
  after importing torch/open_clip/pyiqa, once the metric is built and once it has also scored the
  folder (target <= 350 MB; an fp32 ViT-B/16 image tower alone is 344 MB, so only bf16/fp16 can
  meet it); the workers' peak RSS, CUDA max allocated;
* bf16 (and fp16) vs fp32 score agreement over the folder's images: max |diff| (target <= 0.005) and
  SRCC (target >= 0.999 over 50 images: use ``--folder 50``).

Each (device, precision) runs in a fresh process so its peak memory is its own. Without
``UniQA_weight.pt`` (``--backbone`` or the usual lookup) a random ViT-B/16 in the release's file format
is written and used: timings and memory are those of the real model, score agreement is indicative.
The default workload is small (a ViT-B/16 forward of 10 crops takes seconds on a laptop CPU, and bf16
without AMX/AVX512-BF16 is several times slower than fp32); ``--full`` runs the issue's sizes.

    python scripts/benchmark_inference.py                      # 3 single images, a folder of 8
    python scripts/benchmark_inference.py --images 3 --folder 3 --precisions fp32,bf16
    python scripts/benchmark_inference.py --full               # folder of 50 (agreement target)
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List

TARGET_RATIO = 1.15
TARGET_RSS_INC_MB = 350  # peak RSS above the imports: build the metric + score a folder
TARGET_DIFF, TARGET_SRCC, TARGET_SRCC_N = 0.005, 0.999, 50
CPU_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "avx512_fp16")


# ------------------------------------------------------------------------------------ set-up
def make_images(root: Path, n: int) -> List[Path]:
    """n 512x384 JPEGs of one scene at varied blur / noise / JPEG quality (so quality varies)."""
    import numpy as np
    from PIL import Image, ImageFilter
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:384, 0:512] / 512.0
    base = np.stack([np.sin(2 * math.pi * (3 * xx + 2 * yy)), np.cos(2 * math.pi * (5 * xx - yy)),
                     np.sin(2 * math.pi * 7 * xx * yy)], -1) * 0.35 + 0.5
    paths = []
    for k in range(n):
        img = base + rng.normal(0, 0.15 * (k % 5) / 4, base.shape)
        pil = Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8))
        pil = pil.filter(ImageFilter.GaussianBlur(radius=(k % 7) * 0.5))
        path = root / f"img{k:03d}.jpg"
        pil.save(path, quality=int(95 - 8 * (k % 10)))
        paths.append(path)
    return paths


def cpu_info() -> Dict[str, Any]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    model = re.search(r"model name\s*:\s*(.*)", text)
    flags = set(re.search(r"flags\s*:\s*(.*)", text).group(1).split()) if "flags" in text else set()
    return {"model": model.group(1) if model else platform.processor(),
            "flags": {f: f in flags for f in CPU_FLAGS}, "cores": os.cpu_count()}


def peak_rss_mb() -> float:
    """This process's peak resident set size so far, in MB.

    VmHWM, the high-water mark of this process's own memory: ``ru_maxrss`` would do, but Linux carries
    it over ``fork``/``exec`` from the parent (here the large process that wrote the backbone), so a
    fresh child would start at its parent's peak. ``ru_maxrss`` only where /proc is missing.
    """
    try:
        match = re.search(r"VmHWM:\s+(\d+)", Path("/proc/self/status").read_text())
    except OSError:
        match = None
    if match:
        return int(match.group(1)) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ------------------------------------------------------------------------------------ one config
def run_child(args: argparse.Namespace) -> Dict[str, Any]:
    """Measure one (device, precision) in this process; returns the figures as a dict."""
    import torch

    import pyiqa
    from pyiqa.archs.crops import make_crops, to_unit_float
    from pyiqa.inference.images import load_item
    rss_imports = peak_rss_mb()  # the baseline: what importing torch, open_clip and pyiqa costs
    dev = torch.device(args.child_device)
    cuda = dev.type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    t0 = time.perf_counter()
    metric = pyiqa.create_metric("uniqa", device=dev, backbone=args.backbone,
                                 precision=args.child_precision, batch_size=args.batch_size)
    load_s = time.perf_counter() - t0
    rss_built = peak_rss_mb()
    net = metric.net
    dtype = net.clip.visual.conv1.weight.dtype
    paths = sorted(Path(args.image_dir).glob("*.jpg"))
    singles, folder = paths[:args.images], paths[:args.folder]

    def floor_input(path: Path) -> torch.Tensor:  # everything but the tower done beforehand
        crops = to_unit_float(make_crops(load_item(path), metric.crop_spec)).to(dev)
        return ((crops - net.mean) / net.std).to(dtype)

    # The folder first, so that the peak RSS after it is that of building the metric and scoring a
    # folder (plus one warm-up image: first calls initialise kernels), not of the timing inputs below.
    metric(singles[0] if singles else folder[0]).cpu()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    results = list(metric.score_files(folder, workers=args.workers))
    folder_s = time.perf_counter() - t
    rss_folder = peak_rss_mb()
    cuda_alloc = torch.cuda.max_memory_allocated(dev) / 2**20 if cuda else None
    failed = [str(p) for p, s, _ in results if s is None]

    floor_inputs = [floor_input(p) for p in singles]  # shapes already warmed up above
    floor, single = [], []
    for k, path in enumerate(singles):  # interleaved so that drifting machine load hits both
        for what in (("floor", "single") if k % 2 == 0 else ("single", "floor")):
            t = time.perf_counter()
            if what == "floor":
                with torch.no_grad():
                    net.clip.encode_image(floor_inputs[k])
                sync()
                floor.append(time.perf_counter() - t)
            else:
                metric(path).cpu()
                single.append(time.perf_counter() - t)
    return {
        "device": str(dev), "precision": args.child_precision, "weights_dtype": str(dtype),
        "threads": torch.get_num_threads(), "load_s": load_s, "floor_s": floor, "single_s": single,
        "folder_n": len(folder), "folder_s": folder_s, "folder_scores": [s for _, s, _ in results],
        "failed": failed, "rss_imports_mb": rss_imports, "rss_built_mb": rss_built,
        "rss_folder_mb": rss_folder, "batch_size": metric.batch_size,
        "workers_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "cuda_max_alloc_mb": cuda_alloc,
    }


# ------------------------------------------------------------------------------------ report
def srcc(a: List[float], b: List[float]) -> float:
    from scipy.stats import spearmanr
    return float(spearmanr(a, b).statistic) if len(a) > 2 else float("nan")


def report(runs: List[Dict[str, Any]], args: argparse.Namespace) -> None:
    print(f"\nTargets: single and folder per-image time <= {TARGET_RATIO}x floor; peak RSS above the "
          f"imports (build + folder, bf16) <= {TARGET_RSS_INC_MB} MB; bf16 |diff| <= {TARGET_DIFF}, "
          f"SRCC >= {TARGET_SRCC} (over {TARGET_SRCC_N} images)\n")
    head = (f"{'device':<7}{'prec':<6}{'load s':>7}{'floor s/img':>12}{'single s/img':>13}{'x floor':>8}"
            f"{'img/s':>7}{'folder s/img':>13}{'x floor':>8}{'img/s':>7}{'peak RSS MB':>12}"
            f"{'(+imports)':>11}{'workers MB':>11}{'CUDA MB':>9}")
    print(head)
    print("-" * len(head))
    for r in runs:
        floor = statistics.median(r["floor_s"])
        single = statistics.median(r["single_s"])
        per_img = r["folder_s"] / max(1, r["folder_n"])
        cuda = f"{r['cuda_max_alloc_mb']:.0f}" if r["cuda_max_alloc_mb"] is not None else "-"
        print(f"{r['device']:<7}{r['precision']:<6}{r['load_s']:>7.1f}{floor:>12.3f}{single:>13.3f}"
              f"{single / floor:>8.3f}{1 / single:>7.2f}{per_img:>13.3f}{per_img / floor:>8.3f}"
              f"{1 / per_img:>7.2f}{r['rss_folder_mb']:>12.0f}"
              f"{r['rss_folder_mb'] - r['rss_imports_mb']:>+11.0f}{r['workers_peak_rss_mb']:>11.0f}{cuda:>9}")
    print("\n(floor/single: median over", args.images, "image(s); folder:", args.folder,
          "images, workers =", args.workers, ", batch =", args.batch_size or "default",
          "; peak RSS: after building the metric and scoring the folder; '+imports': above the peak "
          "right after importing torch/open_clip/pyiqa)")
    report_memory(runs)
    for r in runs:
        if r["failed"]:
            print(f"!! {r['device']} {r['precision']}: {len(r['failed'])} images failed: {r['failed'][:3]}")
    for dev in sorted({r["device"] for r in runs}):
        ref = next((r for r in runs if r["device"] == dev and r["precision"] == "fp32"), None)
        if ref is None:
            continue
        for r in runs:
            if r["device"] != dev or r is ref:
                continue
            a, b = ref["folder_scores"], r["folder_scores"]
            diff = max(abs(x - y) for x, y in zip(a, b))
            print(f"{dev} {r['precision']} vs fp32 over {len(a)} images: max |diff| = {diff:.5f} "
                  f"({'ok' if diff <= TARGET_DIFF else 'ABOVE'} target {TARGET_DIFF}), SRCC = "
                  f"{srcc(a, b):.5f}" + (f" (target is over {TARGET_SRCC_N} images: --folder "
                                          f"{TARGET_SRCC_N})" if len(a) < TARGET_SRCC_N else ""))


def report_memory(runs: List[Dict[str, Any]]) -> None:
    """Per precision: what building the metric, then also scoring the folder, adds to the imports."""
    print(f"\nMemory (each precision in a fresh process; peak RSS above the peak right after the "
          f"imports; target <= {TARGET_RSS_INC_MB} MB):")
    for r in runs:
        built = r["rss_built_mb"] - r["rss_imports_mb"]
        scored = r["rss_folder_mb"] - r["rss_imports_mb"]
        verdict = "ok" if scored <= TARGET_RSS_INC_MB else "ABOVE"
        print(f"  {r['device']} {r['precision']}: imports {r['rss_imports_mb']:.0f} MB; metric built "
              f"{built:+.0f} MB; built + folder of {r['folder_n']} image(s), batch {r['batch_size']}: "
              f"{scored:+.0f} MB ({verdict} target)")


def main(argv: List[str] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backbone", default=None,
                   help="UniQA_weight.pt (default: the usual lookup, else a random ViT-B/16 file)")
    p.add_argument("--images", type=int, default=3, help="images timed one at a time (default 3)")
    p.add_argument("--folder", type=int, default=8, help="images in the folder run (default 8)")
    p.add_argument("--precisions", default=None,
                   help="comma list (default fp32,bf16 on CPU; fp32,fp16,bf16 on CUDA)")
    p.add_argument("--devices", default=None, help="comma list (default cpu, plus cuda if present)")
    p.add_argument("--workers", type=int, default=2, help="decoding processes of the folder run")
    p.add_argument("--batch-size", type=int, default=None, help="images per forward in the folder run")
    p.add_argument("--full", action="store_true",
                   help=f"the issue's sizes: 5 single images, a folder of {TARGET_SRCC_N}")
    p.add_argument("--json", default=None, help="also write the raw figures here")
    p.add_argument("--child-device", help=argparse.SUPPRESS)
    p.add_argument("--child-precision", help=argparse.SUPPRESS)
    p.add_argument("--image-dir", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.full:
        args.images, args.folder = max(args.images, 5), max(args.folder, TARGET_SRCC_N)
    if args.child_device:  # a measuring child: print its figures as JSON on the last line
        print(json.dumps(run_child(args)))
        return 0
    return parent(args)


def parent(args: argparse.Namespace) -> int:
    import torch

    from pyiqa.archs.uniqa_arch import MODEL_CARDS
    from pyiqa.inference.weights import find_weight
    from pyiqa.utils.precision import cpu_has_fast_bf16
    info = cpu_info()
    print(f"CPU: {info['model']}, {info['cores']} logical cores, torch {torch.__version__} with "
          f"{torch.get_num_threads()} threads")
    print("CPU flags: " + ", ".join(f"{f}={'yes' if v else 'no'}" for f, v in info["flags"].items())
          + f" -> fast bf16 on CPU: {'yes' if cpu_has_fast_bf16() else 'NO (bf16 matmuls are emulated: expect bf16 to be several times slower than fp32 here)'}")
    has_cuda = torch.cuda.is_available()
    if has_cuda:
        print(f"CUDA: {torch.cuda.get_device_name(0)}")
    devices = args.devices.split(",") if args.devices else ["cpu"] + (["cuda"] if has_cuda else [])
    with tempfile.TemporaryDirectory(prefix="pyiqa_bench_") as tmp:
        tmp = Path(tmp)
        backbone = args.backbone or find_weight(MODEL_CARDS["uniqa"].backbone_file)
        if backbone is None:
            backbone = write_random_vit(tmp / "UniQA_weight.pt")
            print("Backbone: UniQA_weight.pt not found: using a RANDOM ViT-B/16 in the same file format "
                  "(speed and memory are the real model's; scores are not quality)")
        else:
            print(f"Backbone: {backbone}")
        image_dir = tmp / "images"
        image_dir.mkdir()
        make_images(image_dir, max(args.images, args.folder))
        print(f"Images: {max(args.images, args.folder)} synthetic 512x384 JPEGs; protocol: 10 seeded "
              "random 224 crops per image (the default)")
        runs = []
        for dev in devices:
            precisions = (args.precisions.split(",") if args.precisions else
                          ["fp32", "fp16", "bf16"] if dev.startswith("cuda") else ["fp32", "bf16"])
            for prec in precisions:
                print(f"... measuring {dev} {prec}", flush=True)
                runs.append(child(args, dev, prec, str(backbone), image_dir))
    report(runs, args)
    if args.json:
        Path(args.json).write_text(json.dumps({"cpu": info, "runs": runs}, indent=1))
    return 0


def write_random_vit(path: Path) -> Path:
    """A random ViT-B/16 in UniQA_weight.pt's format, at CLIP's trained temperature (100)."""
    import torch

    from pyiqa.archs.clip_backbone import save_random_backbone
    from pyiqa.utils.checkpoint import load_checkpoint
    save_random_backbone(path, config="vit-b-16", dtype=torch.float16, seed=0)
    sd = load_checkpoint(path, "CLIP checkpoint")
    sd["logit_scale"] = torch.tensor(math.log(100.0), dtype=torch.float16)
    torch.save(sd, path)
    return path


def child(args: argparse.Namespace, device: str, precision: str, backbone: str,
          image_dir: Path) -> Dict[str, Any]:
    cmd = [sys.executable, __file__, "--child-device", device, "--child-precision", precision,
           "--backbone", backbone, "--image-dir", str(image_dir), "--images", str(args.images),
           "--folder", str(args.folder), "--workers", str(args.workers)]
    if args.batch_size:
        cmd += ["--batch-size", str(args.batch_size)]
    run = subprocess.run(cmd, capture_output=True, text=True)
    if run.returncode != 0:
        sys.stderr.write(run.stderr)
        raise SystemExit(f"measuring {device} {precision} failed (exit {run.returncode})")
    return json.loads(run.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    sys.exit(main())
