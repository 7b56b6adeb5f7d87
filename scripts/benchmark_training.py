"""Standard vs feature-cached adapter training: wall times and the test scores each reaches.

For the embedded demo (tiny random backbone) and for a synthetic set it generates (default 1,000 images at
512x384 from scikit-image's photographs: 40 contents x (pristine + 4 distortions x 6 levels), MOS from the
level; random ViT-B/16 backbone), it trains twice with the same YAML and seed, once with the standard loop
and once with ``train.feature_cache: true``, each through ``train.py``'s own code path, and prints

* the cache build time, the time per epoch and end to end (model building + cache + loop + tests),
* the final network's test SRCC/PLCC for each loop, and
* the ratios the feature-cache issue targets (cached epoch >= 50x faster, end to end >= 10x, test SRCC
  within 0.02).

Backbones are RANDOM: the SRCC measures how well the adapter fits the random tower's features to this
synthetic MOS, not a quality model. Times are measured in this one run on this machine; compare ratios.

  python scripts/benchmark_training.py                      # full: 50 epochs (a GPU is advisable)
  python scripts/benchmark_training.py --epochs 3 --synthetic-images 100 --synthetic-backbone random-tiny
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import yaml
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SOURCES = ("astronaut", "coffee", "chelsea", "rocket", "stereo_motorcycle", "immunohistochemistry",
           "hubble_deep_field", "retina")
LEVELS = 6
DISTORTIONS = {  # parameter per level 1..6
    "gblur": (0.6, 1.2, 2.0, 3.0, 4.5, 6.5),
    "gnoise": (6.0, 12.0, 20.0, 30.0, 42.0, 58.0),
    "jpeg": (45, 28, 18, 11, 7, 4),
    "contrast": (0.8, 0.65, 0.5, 0.38, 0.27, 0.18),
}


def make_synthetic_set(root: Path, images: int, size: Sequence[int], seed: int = 0) -> Dict[str, Path]:
    """``images`` PNGs of ``size`` (W, H): contents are seeded random crops of the bundled photographs,
    each with its pristine version and 4 distortions x 6 levels (25 per content); an 80/20 split by
    content in a split pickle (pyiqa layout). Rebuilt only when missing or of another size/count."""
    from pyiqa.data.demo_dataset import distort_image, skimage_photo
    marker = root / "synthetic.json"
    spec = {"images": images, "size": list(size), "seed": seed, "version": 1}
    paths = {"root": root, "meta": root / "meta_info_synthetic.csv", "split": root / "synthetic_split.pkl"}
    if marker.is_file() and json.loads(marker.read_text()) == spec:
        return paths
    rng = np.random.default_rng(seed)
    per_content = 1 + len(DISTORTIONS) * LEVELS
    contents = int(np.ceil(images / per_content))
    (root / "images").mkdir(parents=True, exist_ok=True)
    rows: List[tuple] = []
    w, h = size
    for c in range(contents):
        photo = skimage_photo(SOURCES[c % len(SOURCES)])
        scale = rng.uniform(0.45, 1.0)                      # a random 4:3 window of the photograph
        cw = int(min(photo.width, photo.height * w / h) * scale)
        ch = int(cw * h / w)
        x0, y0 = int(rng.integers(0, photo.width - cw + 1)), int(rng.integers(0, photo.height - ch + 1))
        base = photo.crop((x0, y0, x0 + cw, y0 + ch)).resize((w, h), Image.Resampling.LANCZOS)
        variants = [("pristine", 0, base)] + [(k, lvl + 1, distort_image(base, k, p, rng))
                                               for k, params in DISTORTIONS.items() for lvl, p in enumerate(params)]
        for kind, level, img in variants:
            if len(rows) == images:
                break
            name = f"c{c:03d}_{kind}{level}.png"
            img.save(root / "images" / name)
            mos = 90.0 - level * 12.0 + rng.normal(0.0, 3.0)  # level 6 -> ~18
            rows.append((name, round(float(np.clip(mos, 0, 100)), 3), c))
    import pandas as pd
    import pickle
    pd.DataFrame(rows, columns=["img_name", "mos", "content"])[["img_name", "mos"]].to_csv(paths["meta"], index=False)
    order = rng.permutation(contents)
    test_contents = set(order[: max(1, contents // 5)].tolist())
    split = {1: {"train": [i for i, r in enumerate(rows) if r[2] not in test_contents], "val": [],
                 "test": [i for i, r in enumerate(rows) if r[2] in test_contents]}}
    with open(paths["split"], "wb") as f:
        pickle.dump(split, f)
    marker.write_text(json.dumps(spec))
    return paths


def _options(name: str, dataset: Dict[str, Any], backbone: str, epochs: int, cached: bool, views: int,
             workers: int, cache_dir: Path, precision: str, iters_per_epoch: int) -> Dict[str, Any]:
    """The release's recipe (Adam 2e-4, cosine per epoch, batch 8, MSE, 224 crops + flip, 10 test crops),
    validating every 5 epochs on the test part, as the release does; only the loop differs."""
    section = {**dataset, "mos_range": [0, 100], "mos_normalize": True, "num_worker_per_gpu": workers}
    opt = {
        "name": name, "num_gpu": "auto", "manual_seed": 123, "precision": precision,
        "datasets": {"train": {**section, "augment": {"hflip": True, "random_crop": 224}, "use_shuffle": True,
                               "batch_size_per_gpu": 8},
                     "val": {**section, "batch_size_per_gpu": 8},
                     "test": {**section, "batch_size_per_gpu": 8}},
        "network": {"type": "UniQA", "backbone": backbone, "prompts": ["quality"], "test_crop": "random10"},
        "train": {"optim": {"type": "Adam", "lr": 2e-4}, "total_epoch": epochs,
                  "scheduler": {"type": "CosineAnnealingLR", "T_max": epochs, "eta_min": 0},
                  "mos_loss_opt": {"type": "MSELoss"}},
        "val": {"val_freq": max(1, 5 * iters_per_epoch), "key_metric": "srcc",
                "metrics": {"srcc": {"type": "calculate_srcc"}, "plcc": {"type": "calculate_plcc"}}},
        "logger": {"print_freq": 10 ** 9, "save_latest_freq": 10 ** 9, "use_tb_logger": False},
    }
    if cached:
        opt["train"].update(feature_cache=True, views_per_image=views, feature_cache_dir=str(cache_dir))
    return opt


def _train(opt: Dict[str, Any], work: Path) -> Dict[str, Any]:
    from pyiqa.train import main
    yml = work / f"{opt['name']}.yml"
    yml.write_text(yaml.safe_dump(opt, sort_keys=False))
    tic = time.perf_counter()
    main(["-opt", str(yml), "--root", str(work)])
    wall = time.perf_counter() - tic
    res = json.loads((work / "experiments" / opt["name"] / "results.json").read_text())
    epochs = opt["train"]["total_epoch"]
    test = res["test"]["test"]
    return {"cache_s": res["cache_seconds"], "loop_s": res["seconds"], "epoch_s": res["seconds"] / epochs,
            "end_to_end_s": wall, "srcc": test["srcc"], "plcc": test["plcc"]}


def benchmark(label: str, dataset: Dict[str, Any], backbone: str, args: argparse.Namespace, work: Path,
              train_images: int) -> Dict[str, Any]:
    iters = max(1, train_images // 8)
    out = {}
    for mode in ("standard", "cached"):
        opt = _options(f"bench_{label}_{mode}", dataset, backbone, args.epochs, mode == "cached", args.views,
                       args.workers, work / f"cache_{label}_{time.time_ns()}", args.precision, iters)
        out[mode] = _train(opt, work)
    s, c = out["standard"], out["cached"]
    out["ratios"] = {"epoch_speedup": s["epoch_s"] / max(c["epoch_s"], 1e-9),
                     "end_to_end_speedup": s["end_to_end_s"] / max(c["end_to_end_s"], 1e-9),
                     "srcc_difference": c["srcc"] - s["srcc"]}
    return out


def report(label: str, result: Dict[str, Any], backbone: str, epochs: int) -> str:
    lines = [f"\n{label} (backbone {backbone}: RANDOM weights, not a quality model; {epochs} epochs)",
             "| loop | cache build s | per epoch s | end to end s | test SRCC | test PLCC |",
             "|---|---|---|---|---|---|"]
    for mode in ("standard", "cached"):
        r = result[mode]
        lines.append(f"| {mode} | {r['cache_s']:.1f} | {r['epoch_s']:.3f} | {r['end_to_end_s']:.1f} | "
                     f"{r['srcc']:.4f} | {r['plcc']:.4f} |")
    q = result["ratios"]
    lines.append(f"cached epoch {q['epoch_speedup']:.0f}x faster (target >= 50x: "
                 f"{'met' if q['epoch_speedup'] >= 50 else 'NOT met'}); end to end {q['end_to_end_speedup']:.1f}x "
                 f"(target >= 10x: {'met' if q['end_to_end_speedup'] >= 10 else 'NOT met'}); test SRCC "
                 f"difference {q['srcc_difference']:+.4f} (target within 0.02: "
                 f"{'met' if abs(q['srcc_difference']) <= 0.02 else 'NOT met'})")
    return "\n".join(lines)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="\n".join(__doc__.splitlines()[2:]))
    parser.add_argument("--work", default="benchmark_training", help="folder for data, runs and caches")
    parser.add_argument("--epochs", type=int, default=50)
    parser.add_argument("--views", type=int, default=16, help="train.views_per_image of the cached loop")
    parser.add_argument("--workers", type=int, default=None,
                        help="DataLoader workers (default: one per core beyond the first, at most 8)")
    parser.add_argument("--precision", default="auto", help="both loops (auto: the fastest on this device)")
    parser.add_argument("--synthetic-images", type=int, default=1000)
    parser.add_argument("--synthetic-size", type=int, nargs=2, default=(512, 384), metavar=("W", "H"))
    parser.add_argument("--synthetic-backbone", default="random", help="random = ViT-B/16 architecture")
    parser.add_argument("--demo-backbone", default="random-tiny")
    parser.add_argument("--skip", choices=["demo", "synthetic"], action="append", default=[])
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    if args.workers is None:
        from pyiqa.utils.threads import available_cores
        args.workers = min(8, available_cores() - 1)
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    import torch
    from pyiqa.utils.precision import resolve_precision
    device = "cuda" if torch.cuda.is_available() else "cpu"
    print(f"device {device} ({torch.cuda.get_device_name(0) if device == 'cuda' else 'CPU'}), precision "
          f"{args.precision} -> {resolve_precision(args.precision, device)}, torch {torch.__version__}")
    figures: Dict[str, Any] = {}
    texts = []
    if "demo" not in args.skip:
        from pyiqa.data.demo_dataset import build_demo_dataset
        demo = build_demo_dataset(work / "demo")
        ds = {"name": "demo", "type": "GeneralNRDataset", "dataroot_target": str(demo["root"]),
              "meta_info_file": str(demo["meta_info_file"]), "split_file": str(demo["split_file"]),
              "split_index": 1}
        figures["demo"] = benchmark("demo", ds, args.demo_backbone, args, work, train_images=104)
        texts.append(report("demo (130 images of 384x288, 104 for training)", figures["demo"],
                            args.demo_backbone, args.epochs))
        print(texts[-1], flush=True)
    if "synthetic" not in args.skip:
        paths = make_synthetic_set(work / "synthetic", args.synthetic_images, args.synthetic_size)
        from pyiqa.utils.safe_pickle import load_data_pickle  # the project's restricted unpickler
        n_train = len(load_data_pickle(paths["split"], "Split file")[1]["train"])
        ds = {"name": "synthetic", "type": "GeneralNRDataset", "dataroot_target": str(paths["root"] / "images"),
              "meta_info_file": str(paths["meta"]), "split_file": str(paths["split"]), "split_index": 1}
        figures["synthetic"] = benchmark("synthetic", ds, args.synthetic_backbone, args, work, n_train)
        w, h = args.synthetic_size
        texts.append(report(f"synthetic ({args.synthetic_images} images of {w}x{h}, {n_train} for training)",
                            figures["synthetic"], args.synthetic_backbone, args.epochs))
        print(texts[-1], flush=True)
    print("\n".join(["", "Summary:"] + texts))
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "device": device, **figures}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
