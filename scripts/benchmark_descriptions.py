"""Throughput of generate_descriptions against the stub chat-completions server (fixed reply latency).

With a model's generation time replaced by a fixed sleep, the ideal rate at concurrency N is
N / latency; the gap to it is this client's own cost per image (decode, downscale, JPEG + base64,
request, parse, one fsynced line). The stub runs in its own process, as a model server would, and a
short warm-up run first keeps one-time costs (imports, the client's first connection) out of the
numbers. Prints descriptions/s per concurrency and the speed-up of the highest over the lowest.

    python scripts/benchmark_descriptions.py                       # 48 images, latency 0.2 s, N = 1 and 8
    python scripts/benchmark_descriptions.py --images 96 --concurrency 1 8 32
"""
from __future__ import annotations

import argparse
import logging
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def make_dataset(folder: Path, n: int) -> Path:
    """``n`` 512x384 JPEGs (smooth colour fields with mild noise, ~40-60 kB like photos) and a meta CSV
    with MOS spread over 0-100; returns the CSV."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:384, 0:512] / 512.0
    rows = []
    for i in range(n):
        phase = rng.uniform(0, 6.3, size=3)
        base = np.stack([np.sin(6 * xx + 4 * yy * c + p) for c, p in zip((1, 2, 3), phase)], axis=-1)
        pixels = np.clip(128 + 90 * base + rng.normal(0, 6, size=base.shape), 0, 255).astype(np.uint8)
        Image.fromarray(pixels).save(folder / f"img{i:03d}.jpg", quality=90)
        rows.append(f"img{i:03d}.jpg,{100 * i / max(1, n - 1):.1f}")
    meta = folder / "meta.csv"
    meta.write_text("image_name,mos\n" + "\n".join(rows) + "\n")
    return meta


def start_stub(latency: float) -> tuple:
    """The stub server in its own process on a free port: ``(process, endpoint URL)``."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, str(Path(__file__).with_name("mllm_stub_server.py")),
                             "--port", str(port), "--latency", str(latency)],
                            stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if "endpoint" not in line:
        proc.kill()
        raise SystemExit(f"the stub server did not start: {line!r}")
    return proc, f"http://127.0.0.1:{port}/v1"


def measure(folder: Path, meta: Path, url: str, concurrency: int, max_side: int,
            limit: Optional[int] = None) -> Dict[str, float]:
    from train_clip.corpus.describe import DescribeSettings, run
    out = folder / f"desc_c{concurrency}_{limit}.jsonl"
    summary = run(DescribeSettings(meta=meta, root=folder, task="quality", mos_range=(0, 100), endpoint=url,
                                   model="stub", out=out, concurrency=concurrency, max_side=max_side,
                                   limit=limit, progress=False))
    if summary.described != summary.todo:
        raise SystemExit(f"concurrency {concurrency}: {summary.todo - summary.described} images failed")
    return {"rate": summary.described / summary.seconds, "seconds": summary.seconds}


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=48, help="images per run (default: 48)")
    parser.add_argument("--latency", type=float, default=0.2, help="stub reply latency, s (default: 0.2)")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8], help="default: 1 8")
    parser.add_argument("--max-side", type=int, default=512, help="longest side sent (default: 512)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    results = {}
    proc, url = start_stub(args.latency)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            meta = make_dataset(folder, args.images)
            kb = sum(p.stat().st_size for p in folder.glob("*.jpg")) / args.images / 1024
            measure(folder, meta, url, 2, args.max_side, limit=4)  # warm-up: imports, first connection
            print(f"stub server (own process) latency {args.latency:.2f} s; {args.images} images, 512x384 "
                  f"JPEG ~{kb:.0f} kB, sent at max side {args.max_side}")
            for c in args.concurrency:
                results[c] = r = measure(folder, meta, url, c, args.max_side)
                print(f"concurrency {c:3d}: {r['rate']:7.2f} descriptions/s (ideal {c / args.latency:7.2f}; "
                      f"{r['seconds']:.2f} s)")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    lo, hi = min(results), max(results)
    if hi != lo:
        print(f"speed-up {hi} vs {lo}: {results[hi]['rate'] / results[lo]['rate']:.2f}x "
              f"(ideal {hi / lo:.0f}x)")


if __name__ == "__main__":
    main()
