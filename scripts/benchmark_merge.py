"""Peak memory and time of merging a scoring folder's part files (``ScoreFolder.merge``).

Writes ``--parts`` part files of ``--rows`` rows each (default 200 x 10,000 = 2M rows) with
``ScoreFolder.write_part``: keys like ``shard-000123/img-000456.jpg`` shuffled across the parts, two
metric columns, one error row in a thousand. Then, for each implementation of
``pyiqa/inference/score_parts.py`` (the installed one, and any file given with ``--implementation``,
e.g. an older version from git), merges them in a fresh process and prints the peak RSS (VmHWM) after
the imports, after the merge, the increment, and the seconds the merge took.

    python scripts/benchmark_merge.py                                  # CSV, 2M rows
    python scripts/benchmark_merge.py --format parquet --parts 50
    git show HEAD~1:pyiqa/inference/score_parts.py > /tmp/old_score_parts.py
    python scripts/benchmark_merge.py --implementation /tmp/old_score_parts.py   # before / after
"""
from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchmark_inference import peak_rss_mb  # noqa: E402  (VmHWM: this process's own peak)

CURRENT = "current"


def load_implementation(path: str) -> ModuleType:
    """The installed ``pyiqa.inference.score_parts``, or the file ``path`` imported as a sibling module
    (its relative imports resolve inside the installed ``pyiqa.inference``)."""
    if path == CURRENT:
        return importlib.import_module("pyiqa.inference.score_parts")
    name = "pyiqa.inference._benchmarked_score_parts"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"--implementation {path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def write_parts(folder: Path, fmt: str, parts: int, rows: int, seed: int = 0) -> None:
    """The part files of a run over ``parts`` shards of ``rows`` images, keys shuffled across parts."""
    from pyiqa.inference.collection import ImageRef
    from pyiqa.inference.score_parts import ScoreFolder
    out = ScoreFolder(folder, fmt)
    out.parts.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    order = list(range(parts * rows))
    rng.shuffle(order)
    for i in range(parts):
        batch = []
        for n in order[i * rows:(i + 1) * rows]:
            ref = ImageRef(f"shard-{n // rows:06d}/img-{n % rows:06d}.jpg")
            if n % 1000 == 7:
                batch.append((ref, None, "Cannot decode image: truncated file"))
            else:
                batch.append((ref, [rng.uniform(1, 5), rng.uniform(0, 1)], None))
        out.write_part(i, "path", ["uniqa", "uniqa-aesthetic"], batch)


def child(args: argparse.Namespace) -> None:
    """Run in a fresh process: import, merge, print the measurements as JSON."""
    module = load_implementation(args.implementation)
    if args.format == "parquet":  # both implementations need them; count them in the baseline
        importlib.import_module("pandas")
        importlib.import_module("pyarrow.parquet")
    base = peak_rss_mb()
    folder = module.ScoreFolder(Path(args.folder), args.format)
    kwargs = {"fan_in": args.fan_in} if args.fan_in else {}
    tic = time.perf_counter()
    path, rows, errors = folder.merge(args.parts, **kwargs)
    seconds = time.perf_counter() - tic
    print(json.dumps({"base_mb": base, "peak_mb": peak_rss_mb(), "seconds": seconds, "rows": rows,
                      "errors": errors, "bytes": Path(path).stat().st_size}))


def measure(script: Path, folder: Path, fmt: str, parts: int, implementation: str,
            fan_in: Optional[int]) -> Dict[str, Any]:
    cmd = [sys.executable, str(script), "--child", "--folder", str(folder), "--format", fmt, "--parts",
           str(parts), "--implementation", implementation]
    if fan_in:
        cmd += ["--fan-in", str(fan_in)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"merge with {implementation} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parts", type=int, default=200)
    parser.add_argument("--rows", type=int, default=10_000, help="rows per part")
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv")
    parser.add_argument("--fan-in", type=int, default=None, help="files per merge pass (current code only)")
    parser.add_argument("--implementation", action="append", default=[],
                        help="another score_parts.py to measure as well (repeatable)")
    parser.add_argument("--repeat", type=int, default=1, help="merges per implementation (best time kept)")
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        args.implementation = args.implementation[0]
        return child(args)
    script = Path(__file__).resolve()
    with tempfile.TemporaryDirectory(prefix="benchmark_merge.") as tmp:
        folder = Path(tmp) / "out"
        tic = time.perf_counter()
        write_parts(folder, args.format, args.parts, args.rows)
        print(f"wrote {args.parts} {args.format} parts x {args.rows:,} rows in {time.perf_counter() - tic:.1f} s")
        print(f"{'implementation':<32} {'rows':>10} {'parts':>6} {'base MB':>8} {'peak MB':>8} {'+MB':>7} "
              f"{'seconds':>8}")
        for implementation in [CURRENT, *args.implementation]:
            runs = [measure(script, folder, args.format, args.parts, implementation,
                            args.fan_in if implementation == CURRENT else None) for _ in range(args.repeat)]
            best = min(runs, key=lambda r: r["seconds"])
            print(f"{implementation[-32:]:<32} {best['rows']:>10,} {args.parts:>6} {best['base_mb']:>8.0f} "
                  f"{max(r['peak_mb'] for r in runs):>8.0f} "
                  f"{max(r['peak_mb'] - r['base_mb'] for r in runs):>7.0f} {best['seconds']:>8.1f}")


if __name__ == "__main__":
    main()
