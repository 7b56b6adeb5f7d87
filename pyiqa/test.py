"""``python test.py -opt X.yml``: score the test sets with a trained network; print SRCC/PLCC/KRCC/RMSE,
write ``results/<name>/predictions_<dataset>.csv`` (image,mos,prediction) and a scatter plot."""
from __future__ import annotations

import argparse
import csv
import logging
from pathlib import Path
from typing import Dict, List, Optional

from .data import build_dataloader, build_dataset
from .engine.run import select_device
from .models import GeneralIQAModel
from .utils.errors import ConfigError, OutputError
from .utils.experiment import archive
from .utils.entry import run_cli
from .utils.logger import attach_log_file, setup_logging
from .utils.options import dataset_phase, dump_options, parse_options
from .utils.rng import set_random_seed

logger = logging.getLogger("pyiqa.test")

DEFAULT_METRICS = {"srcc": {"type": "calculate_srcc"}, "plcc": {"type": "calculate_plcc"},
                   "krcc": {"type": "calculate_krcc"}, "rmse": {"type": "calculate_rmse"}}


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("-opt", "--opt", required=True, help="test YAML")
    p.add_argument("--force_yml", nargs="+", default=[], metavar="KEY.SUB=VALUE", help="override options")
    p.add_argument("--root", default=".", help="folder that receives results/ (default: cwd)")
    return p.parse_args(argv)


def write_predictions(path: Path, result: Dict[str, List]) -> None:
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["image", "mos", "prediction"])
        for img, mos, pred in zip(result["img_path"], result["mos"], result["pred"]):
            w.writerow([img, f"{mos:.6f}", f"{pred:.6f}"])
    tmp.replace(path)


def scatter_plot(path: Path, result: Dict[str, List], title: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(4.5, 4.5), dpi=110)
    ax.scatter(result["pred"], result["mos"], s=8, alpha=0.7)
    ax.set_xlabel("prediction")
    ax.set_ylabel("MOS (normalised)" if max(result["mos"], default=0) <= 1.0 else "MOS")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: Optional[List[str]] = None) -> Dict[str, Dict[str, float]]:
    args = parse_args(argv)
    opt, notices = parse_options(args.opt, args.force_yml, is_train=False)
    setup_logging(None, buffer=True)  # the results folder is created once everything is checked
    for note in notices:
        logger.info(note)
    set_random_seed(int(opt.get("manual_seed") or 0))
    if not (opt.get("path") or {}).get("pretrain_network_g"):
        logger.warning("path.pretrain_network_g is not set: testing an UNTRAINED adapter")
    device = select_device(opt.get("num_gpu", "auto"), 0)
    metrics_opt = (opt.get("val") or {}).get("metrics") or DEFAULT_METRICS
    sets = []
    for key, d_opt in opt["datasets"].items():
        phase, where = dataset_phase(key), f"datasets.{key}"
        if phase in ("test", "val"):
            ds = build_dataset(d_opt, phase, where=where)
            sets.append((d_opt.get("name", key), ds, build_dataloader(ds, d_opt, phase, where=where, device=device)))
    if not sets:
        raise ConfigError(f"No datasets.test* (or val*) section to evaluate in {args.opt}")
    model = GeneralIQAModel(opt, device, is_train=False)

    out_dir = Path(args.root) / "results" / opt["name"]
    archived = archive(out_dir)  # an earlier evaluation of this name is kept, never overwritten
    try:
        out_dir.mkdir(parents=True)
    except OSError as err:
        raise OutputError(f"Cannot create the results folder {out_dir}: {err.strerror or err}") from err
    attach_log_file(out_dir / f"test_{opt['name']}.log")
    if archived:
        logger.info("Previous results moved to %s", archived)
    dump_options(opt, out_dir / f"{opt['name']}_options.yml")
    results = {}
    for name, ds, loader in sets:
        metrics, result = model.evaluate(loader, metrics_opt, desc=name, pbar=True)
        csv_path = out_dir / f"predictions_{name}.csv"
        write_predictions(csv_path, result)
        text = "  ".join(f"{k.upper()}: {v:.4f}" for k, v in metrics.items())
        scatter_plot(out_dir / f"scatter_{name}.png", result, f"{opt['name']} on {name}: {text}")
        logger.info("%s (%d images): %s", name, len(ds), text)
        logger.info("Predictions written to %s", csv_path)
        results[name] = metrics
    return results


def cli() -> None:
    run_cli(main)


if __name__ == "__main__":
    cli()
