"""Throughput of scoring a collection: the ``pyiqa`` command writing one CSV (as before issue 21) against
the folder mode (part files, manifest, merge) in 1 process and in 2 processes under torchrun (gloo on
CPU), with each run's peak RSS; on a CUDA machine also images/s at batch 32/64/128 in bf16 and fp16
against the release-equivalent loop (fp32, one image at a time, the prompts re-encoded for every image).

Every CLI figure is a fresh process. Start-up (imports, building the model, warming up) is taken out:
each mode also scores the first quarter of the images, and images/s = (N - N/4) / (t_N - t_N/4). Peak RSS is the largest process's (torchrun:
the largest rank). Without ``--backbone`` a RANDOM ViT-B/16 in UniQA_weight.pt's format is written: the
speed and memory are the real model's, the scores are not quality.

    python scripts/benchmark_scoring.py                    # 48 images of 512x384, precision auto
    python scripts/benchmark_scoring.py --images 96 --precision fp32
"""
from __future__ import annotations

import argparse
import csv
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark_inference import cpu_info, make_images, write_random_vit  # noqa: E402

RSS_WRAPPER = ("import resource, subprocess, sys; code = subprocess.run(sys.argv[1:]).returncode; "
               "print('MAXRSS_KB', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, file=sys.stderr); "
               "sys.exit(code)")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(cmd: List[str], cwd: Path) -> Tuple[float, float]:
    """(seconds, peak RSS in MB of the largest process) of ``cmd`` run to completion."""
    env = {**os.environ}
    env.pop("OMP_NUM_THREADS", None)  # torchrun sets 1 per process; the single process uses its cores
    tic = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", RSS_WRAPPER, *cmd], cwd=cwd, env=env, capture_output=True,
                          text=True)
    seconds = time.perf_counter() - tic
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    rss = next(int(line.split()[1]) for line in proc.stderr.splitlines() if line.startswith("MAXRSS_KB"))
    return seconds, rss / 1024


def cli_modes(target: Path, backbone: str, precision: str, crops: str, out: Path) -> Dict[str, List[str]]:
    common = ["uniqa", "-t", str(target), "--backbone", backbone, "--precision", precision, "--crops", crops, "-q"]
    pyiqa = [sys.executable, "-m", "pyiqa"]
    return {
        "one CSV (before)": [*pyiqa, *common, "-o", str(out / "single.csv")],
        "folder, 1 process": [*pyiqa, *common, "-o", f"{out / 'one'}/"],
        "folder, 2 processes (torchrun, gloo)": [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                                                 f"--master_port={free_port()}", "-m", "pyiqa", *common, "-o",
                                                 f"{out / 'two'}/"],
    }


def read_scores(path: Path) -> Dict[str, float]:
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return {r[0]: float(r[1]) for r in rows[1:] if r[1]}


def cpu_figures(args: argparse.Namespace, work: Path, backbone: str) -> None:
    images = work / "images"
    quarter = work / "quarter"
    images.mkdir()
    quarter.mkdir()
    made = make_images(images, args.images)
    small = max(1, args.images // 4)
    for path in made[:small]:
        (quarter / path.name).write_bytes(path.read_bytes())
    print(f"{args.images} images of 512x384, crops {args.crops}, precision {args.precision}, "
          f"{os.cpu_count()} cores; {cpu_info()}")
    print(f"{'mode':<40} {f'{args.images} images s':>12} {f'{small} images s':>12} {'images/s':>9} "
          f"{'peak RSS MB':>12}")
    results = {}
    for name in cli_modes(images, backbone, args.precision, args.crops, work / "runs"):
        full, rss = timed(cli_modes(images, backbone, args.precision, args.crops, work / "runs")[name], work)
        start, _ = timed(cli_modes(quarter, backbone, args.precision, args.crops, work / "runs1")[name], work)
        rate = (args.images - small) / max(full - start, 1e-9)
        results[name] = rate
        print(f"{name:<40} {full:>12.1f} {start:>12.1f} {rate:>9.2f} {rss:>12.0f}")
    one_proc, two_proc = results["folder, 1 process"], results["folder, 2 processes (torchrun, gloo)"]
    print(f"2 processes / 1 process: {two_proc / one_proc:.2f}x; folder mode / one CSV: "
          f"{one_proc / results['one CSV (before)']:.2f}x")
    a = read_scores(work / "runs" / "one" / "scores.csv")
    b = read_scores(work / "runs" / "two" / "scores.csv")
    c = read_scores(work / "runs" / "single.csv")
    print(f"same rows: 1 vs 2 processes {sorted(a) == sorted(b)}, max |diff| {max(abs(a[k] - b[k]) for k in a):.2e}; "
          f"folder vs one CSV max |diff| {max(abs(a[k] - c[k]) for k in a):.2e}")


def gpu_figures(args: argparse.Namespace, work: Path, backbone: str) -> None:
    """images/s of the batched metric (bf16, fp16; batch 32/64/128) and of the release-equivalent loop."""
    import torch

    from pyiqa.archs.uniqa_arch import UniQA
    from pyiqa.inference import create_metric
    from pyiqa.inference.batch import score_files
    images = sorted((work / "images").glob("*.jpg"))
    print(f"GPU: {torch.cuda.get_device_name(0)}, {len(images)} images, crops {args.crops}")
    for precision in ("bf16", "fp16"):
        for batch in (32, 64, 128):
            metric = create_metric("uniqa", device="cuda", backbone=backbone, precision=precision, batch_size=batch,
                                   crops=args.crops)
            list(score_files([metric], images[:batch], batch, 4, False))  # warm-up
            torch.cuda.synchronize()
            tic = time.perf_counter()
            list(score_files([metric], images, batch, 8, False))
            torch.cuda.synchronize()
            print(f"  batched {precision} batch {batch:>3}: {len(images) / (time.perf_counter() - tic):8.1f} images/s, "
                  f"peak {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")
            del metric
            torch.cuda.empty_cache()
    net = UniQA(backbone=backbone).cuda().eval()  # fp32, as the release
    from pyiqa.data.image_io import decode_image, to_tensor
    with torch.no_grad():
        tic = time.perf_counter()
        for path in images:
            net.refresh_text_features()  # the release encodes the prompts in every forward
            net(to_tensor(decode_image(path)).unsqueeze(0).cuda())
        torch.cuda.synchronize()
    print(f"  release-equivalent loop (fp32, one image at a time, prompts re-encoded): "
          f"{len(images) / (time.perf_counter() - tic):8.1f} images/s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=48)
    parser.add_argument("--precision", default="auto", choices=["fp32", "bf16", "fp16", "auto"])
    parser.add_argument("--crops", default="random10")
    parser.add_argument("--backbone", default=None, help="UniQA_weight.pt (default: a random ViT-B/16 file)")
    args = parser.parse_args()
    print(f"python {platform.python_version()}, {platform.machine()}")
    with tempfile.TemporaryDirectory(prefix="bench_scoring_") as tmp:
        work = Path(tmp)
        backbone = args.backbone or str(write_random_vit(work / "UniQA_weight.pt"))
        if not args.backbone:
            print("backbone: a RANDOM ViT-B/16 of the real size (speed and memory are real; scores are not quality)")
        cpu_figures(args, work, backbone)
        import torch
        if torch.cuda.is_available():
            gpu_figures(args, work, backbone)
        else:
            print("GPU figures: pending (no CUDA device on this machine)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
