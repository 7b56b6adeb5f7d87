"""Training throughput (samples/s) and peak memory of ``train_clip`` for a given model and batch on the
current device, side by side with open_clip's own training script on the same model, batch and data.

Both trainers run as subprocesses with the same environment (threads), the same synthetic CSV of
image-caption pairs (``filepath``/``caption`` columns, absolute paths), the same open_clip model config
(registered for open_clip_train through ``open_clip.add_model_config``), the same number of loader
workers, precision and contrastive-loss options (``local_loss`` + ``gather_with_grad``). Throughput is
the steady state: total samples / total time over the logging windows after the first ``--log-every``
steps (both scripts time steps including data waiting). Peak memory: the CUDA allocator peak on GPU,
the main process's peak RSS on CPU. Runs alternate (ours, theirs, ours, ...) so a busy machine hurts
both alike; the median of ``--repeats`` is reported.

    python scripts/benchmark_train_clip.py --model tiny --batch 32 --steps 40              # CPU check
    python scripts/benchmark_train_clip.py --model vit-b-16 --batch 256 --precision bf16 --only-ours
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import yaml
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

OURS_SPEED = re.compile(r"step +(\d+)/\d+\] loss [\d.]+ .*?([\d.]+) samples/s")
OURS_PEAK = re.compile(r"peak (RSS|CUDA memory) ([\d.]+) GiB")
THEIRS_WINDOW = re.compile(r"\[\s*(\d+)/\d+ .*?Batch \(t\): ([\d.]+)")
PEAK_LINE = re.compile(r"BENCH_PEAK (\w+) ([\d.]+)")
THEIRS_WRAPPER = """
import resource, sys, torch, open_clip
open_clip.add_model_config(sys.argv[1])
from open_clip_train.main import main
main(sys.argv[2:])
if torch.cuda.is_available():
    print('BENCH_PEAK CUDA', torch.cuda.max_memory_allocated() / 2**30)
print('BENCH_PEAK RSS', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20)
"""


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="tiny", help="preset of train_clip.model.CONFIGS (tiny, tiny-64px, vit-b-16)")
    p.add_argument("--batch", type=int, default=32, help="batch per process")
    p.add_argument("--steps", type=int, default=40)
    p.add_argument("--log-every", type=int, default=10)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "fp16"])
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--grad-checkpointing", action="store_true")
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--threads", type=int, default=None, help="OMP_NUM_THREADS for both trainers")
    p.add_argument("--only-ours", action="store_true", help="skip open_clip_train")
    p.add_argument("--image-size", type=int, default=288, help="side of the synthetic JPEGs")
    return p.parse_args()


def write_data(tmp: Path, rows: int, side: int) -> Path:
    """64 distinct noisy-gradient JPEGs and a CSV of ``rows`` pairs cycling over them."""
    rng = np.random.default_rng(0)
    (tmp / "img").mkdir()
    names = []
    for k in range(64):
        base = np.linspace(0, 255, side)[None, :, None] * rng.random(3)[None, None, :]
        img = np.clip(base + rng.normal(0, 20 + k, (side, side, 3)), 0, 255).astype(np.uint8)
        names.append(tmp / "img" / f"{k:03d}.jpg")
        Image.fromarray(img).save(names[-1], quality=90)
    csv = tmp / "pairs.csv"
    csv.write_text("filepath,caption\n" + "".join(
        f"{names[i % 64]},a photo number {i % 64} with noise level {i % 7}\n" for i in range(rows)))
    return csv


def run(cmd: List[str], env: Dict[str, str], cwd: Path) -> str:
    proc = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])}... exited {proc.returncode}:\n{out[-3000:]}")
    return out


def steady(windows: List[Tuple[int, float]], skip_until: int) -> float:
    """samples/s over the (samples, seconds) logging windows that end after ``skip_until`` samples."""
    kept, end = [], 0
    for n, seconds in windows:
        end += n
        if end > skip_until:
            kept.append((n, seconds))
    return sum(n for n, _ in kept) / sum(t for _, t in kept)


def ours(args, csv: Path, tmp: Path, env: Dict[str, str], device: str) -> Tuple[float, float, str]:
    from train_clip.model import CONFIGS
    opt = {"name": "bench", "num_gpu": 1 if device == "cuda" else 0, "manual_seed": 0,
           "precision": args.precision, "model": {"config": CONFIGS[args.model],
                                                  "grad_checkpointing": args.grad_checkpointing},
           "data": {"train": [{"type": "csv", "path": str(csv)}], "num_workers": args.workers},
           "train": {"batch_size": args.batch, "total_steps": args.steps, "lr": 1e-4},
           "logger": {"print_freq": args.log_every, "save_latest_freq": 10 ** 9, "use_tb_logger": False},
           "export": {"verify": False}}
    yml = tmp / "bench.yml"
    yml.write_text(yaml.safe_dump(opt))
    out = run([sys.executable, str(REPO / "train_clip" / "train.py"), "-opt", str(yml), "--root", str(tmp)],
              env, tmp)
    steps = [(int(s), float(v)) for s, v in OURS_SPEED.findall(out)]
    windows, prev = [], 0
    for step, speed in steps:  # each log line reports the window since the previous one
        n = (step - prev) * args.batch
        windows.append((n, n / speed))
        prev = step
    peak = OURS_PEAK.search(out)
    return steady(windows, (args.log_every + 1) * args.batch), float(peak.group(2)), peak.group(1)


def theirs(args, csv: Path, tmp: Path, env: Dict[str, str], device: str) -> Tuple[float, float, str]:
    from train_clip.model import CONFIGS
    cfg_dir = tmp / "oc_configs"
    cfg_dir.mkdir(exist_ok=True)
    name = f"uniqa-bench-{args.model}"
    (cfg_dir / f"{name}.json").write_text(json.dumps({**CONFIGS[args.model], "quick_gelu": True}))
    precision = {"fp32": "fp32", "bf16": "amp_bf16", "fp16": "amp"}[args.precision]
    cmd = [sys.executable, "-c", THEIRS_WRAPPER, str(cfg_dir / f"{name}.json"),
           "--train-data", str(csv), "--dataset-type", "csv", "--csv-separator", ",", "--csv-img-key", "filepath",
           "--csv-caption-key", "caption", "--model", name, "--batch-size", str(args.batch), "--epochs", "1",
           "--workers", str(args.workers), "--precision", precision, "--device", device, "--lr", "1e-4",
           "--warmup", "0", "--log-every-n-steps", str(args.log_every), "--logs", str(tmp / "oc_logs"),
           "--save-frequency", "0", "--report-to", "", "--seed", "0", "--local-loss", "--gather-with-grad"]
    if args.grad_checkpointing:
        cmd.append("--grad-checkpointing")
    out = run(cmd, env, tmp)
    windows, prev = [], 0
    for samples, avg in THEIRS_WINDOW.findall(out):  # "[samples/N] ... Batch (t): avg over the window"
        n = int(samples) - prev
        windows.append((n, n / args.batch * float(avg)))
        prev = int(samples)
    peaks = dict(PEAK_LINE.findall(out))
    kind = "CUDA" if device == "cuda" else "RSS"
    return steady(windows, (args.log_every + 1) * args.batch), float(peaks.get(kind, "nan")), kind


def main() -> None:
    args = parse_args()
    import torch
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    results: Dict[str, List[Tuple[float, float, str]]] = {"train_clip": [], "open_clip_train": []}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        csv = write_data(tmp, args.batch * args.steps, args.image_size)
        for r in range(args.repeats):
            for label, fn in (("train_clip", ours), ("open_clip_train", theirs)):
                if label == "open_clip_train" and args.only_ours:
                    continue
                work = tmp / f"{label}_{r}"
                work.mkdir()
                results[label].append(fn(args, csv, work, env, device))
    dev = torch.cuda.get_device_name(0) if device == "cuda" else f"CPU ({os.cpu_count()} cores)"
    print(f"device: {dev}; torch {torch.__version__}; OMP_NUM_THREADS={env.get('OMP_NUM_THREADS', 'unset')}")
    print(f"model {args.model}, batch {args.batch} per process, {args.steps} steps, {args.workers} loader "
          f"workers, precision {args.precision}, grad checkpointing {'on' if args.grad_checkpointing else 'off'}; "
          f"steady state after the first {args.log_every} steps")
    print(f"{'trainer':<17}{'samples/s (median)':>20}  {'runs':<28}{'peak memory':>16}")
    medians: Dict[str, Optional[float]] = {}
    for label, runs in results.items():
        if not runs:
            continue
        speeds = [s for s, _, _ in runs]
        medians[label] = statistics.median(speeds)
        peak = max(m for _, m, _ in runs)
        print(f"{label:<17}{medians[label]:>20.1f}  {str([round(s, 1) for s in speeds]):<28}"
              f"{peak:>9.2f} GiB {runs[0][2]}")
    if len(medians) == 2:
        print(f"train_clip / open_clip_train samples/s: {medians['train_clip'] / medians['open_clip_train']:.3f}")


if __name__ == "__main__":
    main()
