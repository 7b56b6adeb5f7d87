"""``pyiqa-test -opt X.yml``: score the test sets with a trained network; print SRCC/PLCC/KRCC/RMSE,
write ``results/<name>/predictions_<dataset>.csv`` (image, mos, mos_normalized, prediction) and a
scatter plot with the fitted logistic curve. Example: ``pyiqa-test -opt UniQA/demo``.

Precision: the test options' ``precision`` (or ``--force_yml precision=...``) wins; else the one the
network checkpoint's training run recorded, so the numbers are those training reported; else fp32.
"""
from __future__ import annotations

import argparse
import csv
import dataclasses
import logging
import math
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import torch

from .data import build_dataloader, build_dataset
from .engine.options import ExperimentConfig, parse_options
from .engine.run import select_device
from .metrics.scatter import scatter_plot
from .metrics import calculate_metric
from .models import IQAModel
from .utils.checkpoint import load_checkpoint
from .utils.entry import run_cli
from .utils.errors import ConfigError, DataError, OutputError
from .utils.experiment import archive
from .utils.logger import attach_log_file, setup_logging
from .utils.options import dataset_phase, dump_options
from .utils.precision import check_precision, default_precision, resolve_precision
from .utils.rng import set_random_seed
from .utils.shipped_configs import add_config_arguments, resolve_option_file
from .utils.threads import configure_threads

logger = logging.getLogger("pyiqa.test")

DEFAULT_PRECISION = "fp32"  # when nothing records one: the release evaluates in fp32


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    """The flags; ``args.opt`` becomes the YAML file it names (a path, or an installed test config by
    name, :func:`pyiqa.utils.shipped_configs.resolve_option_file`)."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_config_arguments(p, "test", "test YAML")
    p.add_argument("--force_yml", nargs="+", default=[], metavar="KEY.SUB=VALUE", help="override options")
    p.add_argument("--root", default=".", help="folder that receives results/ (default: cwd)")
    args = p.parse_args(argv)
    args.opt = str(resolve_option_file(args.opt, "test"))
    return args


# ------------------------------------------------------------------------------------------ precision
def recorded_precision(path: str) -> Tuple[Optional[str], str]:
    """(precision, where it was found) recorded by the run that wrote the checkpoint at ``path``.

    Our trainer stores the precision it resolved (``auto`` made concrete on the training machine, so a
    bf16 run on an AMX CPU is scored in bf16 anywhere); older checkpoints only their options under
    ``config``: their ``precision``, or the trainer's default for them when they name none. The release's ``{'params': ...}`` files record nothing: (None, why).
    """
    ckpt = load_checkpoint(path, "network checkpoint (path.pretrain_network_g)")
    if isinstance(ckpt, dict) and ckpt.get("precision") is not None:  # the precision training resolved
        where = f"'precision' stored in {path}"
        return check_precision(ckpt["precision"], where), f"the training precision recorded in {path}"
    config = ckpt.get("config") if isinstance(ckpt, dict) else None
    if not isinstance(config, dict):
        return None, f"the checkpoint {path} records no training options"
    if config.get("precision") is None:
        default = default_precision(bool((config.get("train") or {}).get("feature_cache", False)))
        return default, (f"the training options stored in the checkpoint {path} name no precision: the "
                         f"trainer's default for them ({default})")
    where = f"'precision' of the training options stored in {path}"
    return check_precision(config["precision"], where), f"recorded in the checkpoint {path}"


def _concrete(value: str, device: torch.device) -> str:
    """'auto' as it resolves on ``device`` (resolving 'auto' never warns or raises); others unchanged."""
    return resolve_precision(value, device) if value == "auto" else value


def choose_precision(config: ExperimentConfig, overrides: Sequence[str], device: torch.device
                     ) -> Tuple[str, str]:
    """(precision option for the model, why): explicit option > checkpoint's record > fp32."""
    hint = "; to override, set 'precision' in the test options or pass --force_yml precision=..."
    ckpt_path = config.path.pretrain_network_g
    recorded, source = recorded_precision(ckpt_path) if ckpt_path else (None, "no checkpoint is given")
    if config.precision is not None:
        forced = any(o.split("=", 1)[0].strip() == "precision" for o in overrides)
        why = "set by --force_yml" if forced else "set in the test options"
        if recorded is not None and _concrete(recorded, device) != _concrete(config.precision, device):
            logger.warning("The checkpoint was trained with precision '%s' but is evaluated in '%s' (%s): "
                           "scores can differ from those training reported", recorded, config.precision, why)
        return config.precision, why
    if recorded is None:
        return DEFAULT_PRECISION, f"the default, as {source}{hint}"
    if recorded == "fp16" and device.type != "cuda":
        logger.warning("The checkpoint was trained in fp16, which needs CUDA; evaluating on %s in fp32 "
                       "instead (set precision: bf16 or fp32 in the test options to choose)", device)
        return DEFAULT_PRECISION, f"fp16 {source} is unavailable on {device.type}{hint}"
    return recorded, (f"'auto' {source}, resolved on {device.type}" if recorded == "auto" else source) + hint


# ------------------------------------------------------------------------------------------ outputs
def meta_rows(ds: Any, paths: Sequence[str]) -> Tuple[List[str], List[float]]:
    """The meta CSV's image name and MOS (the dataset's own scale, before any normalisation) of each
    predicted image path, found through the dataset's table (``GeneralNRDataset.table``)."""
    by_path = {str(ds.image_path(row)): row for row in set(ds.rows)}
    names, mos = [], []
    for path in paths:
        row = by_path.get(path)
        if row is None:
            raise DataError(f"{ds.name}: predicted image '{path}' is not a row of the meta CSV "
                            f"'{ds.meta_info_file}' (a dataset class changing img_path?)")
        names.append(ds.image_name(row))
        mos.append(ds.mos(row))
    return names, mos


def write_predictions(path: Path, names: Sequence[str], mos: Sequence[float],
                      result: Dict[str, List]) -> None:
    """One row per image: its meta CSV name, MOS (dataset scale), the label the metrics compared
    against (``mos_normalized``: [0, 1], 1 = best, when the dataset normalises) and the prediction."""
    tmp = path.with_suffix(".csv.tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["image", "mos", "mos_normalized", "prediction"])
        for name, raw, label, pred in zip(names, mos, result["mos"], result["pred"]):
            w.writerow([name, repr(raw), f"{label:.6f}", f"{pred:.6f}"])
    tmp.replace(path)


def mos_axis_label(ds: Any) -> str:
    scale = f" ({ds.mos_range[0]:g} to {ds.mos_range[1]:g})" if getattr(ds, "mos_range", None) else ""
    return f"MOS{scale}" + (", lower is better" if getattr(ds, "lower_better", False) else "")


# ------------------------------------------------------------------------------------------ checks
#: Options a checkpoint's ``arch`` records that decide what its tensors mean (not only their shapes).
MEANING_OPTIONS = ("prompts", "use_adapter")


def check_stored_arch(path: str, built: Dict[str, Any], opt_file: str) -> None:
    """Refuse a network checkpoint whose recorded ``prompts`` / ``use_adapter`` differ from the network
    the test options built: its tensors load (same shapes) but mean something else. The checkpoint's
    stored options are the truth, as in :func:`pyiqa.inference.create_metric`."""
    ckpt = load_checkpoint(path, "network checkpoint (path.pretrain_network_g)")
    arch = ckpt.get("arch") if isinstance(ckpt, dict) else None
    if not isinstance(arch, dict):
        return  # the release's files record nothing to compare
    for key in MEANING_OPTIONS:
        stored, used = arch.get(key), built.get(key)
        if key == "prompts" and stored is not None:
            stored = [stored] if isinstance(stored, str) else list(stored)
            used = [used] if isinstance(used, str) else list(used or [])
        if stored is not None and stored != used:
            raise ConfigError(f"The checkpoint {path} was trained with network.{key} = {stored!r}, but the "
                              f"test options {opt_file} build network.{key} = {used!r}; the scores would mean "
                              f"nothing. Set 'network.{key}: {stored!r}' in the test options (or "
                              f"--force_yml \"network.{key}={stored!r}\")")


def score_predictions(result: Dict[str, List], metrics_opt: Dict[str, Any], name: str,
                      ckpt_path: Optional[str]) -> Dict[str, float]:
    """The metrics of the predictions; all NaN (undefined, said once) when a prediction is not finite,
    e.g. a checkpoint holding NaN tensors: correlations of such scores mean nothing."""
    bad = sum(1 for v in result["pred"] if not math.isfinite(v))
    if bad:
        logger.warning("%s: %d of %d predictions are not finite (NaN/inf; the network %s holds non-finite "
                       "tensors?): every metric is UNDEFINED (nan); the predictions CSV is written as is",
                       name, bad, len(result["pred"]), ckpt_path or "(untrained)")
        return {key: float("nan") for key in metrics_opt}
    return {key: calculate_metric(m_opt, result["pred"], result["mos"], where=f"val.metrics.{key}")
            for key, m_opt in metrics_opt.items()}


# ------------------------------------------------------------------------------------------ main
def main(argv: Optional[List[str]] = None) -> Dict[str, Dict[str, float]]:
    args = parse_args(argv)
    config, notices = parse_options(args.opt, args.force_yml, is_train=False)
    setup_logging(None, buffer=True)  # the results folder is created once everything is checked
    logger.info("Options: %s", args.opt)  # which file a config name resolved to
    for note in notices:
        logger.info(note)
    set_random_seed(config.manual_seed)
    ckpt_path = config.path.pretrain_network_g
    if not ckpt_path:
        logger.warning("path.pretrain_network_g is not set: testing an UNTRAINED adapter")
    device = select_device(config.num_gpu, 0)
    sets = []
    for key, d_opt in config.datasets.items():
        phase, where = dataset_phase(key), f"datasets.{key}"
        if phase in ("test", "val"):
            ds = build_dataset(d_opt, phase, where=where)
            loader = build_dataloader(ds, config.loader(key), phase, where=where, device=device)
            sets.append((d_opt.get("name", key), ds, loader))
    if not sets:
        raise ConfigError(f"No datasets.test* (or val*) section to evaluate in {args.opt}")
    # the sets are scored one after another: the busiest loader's workers share the cores with torch
    configure_threads(max(loader.num_workers for _, _, loader in sets))
    precision, why = choose_precision(config, args.force_yml, device)
    model = IQAModel(dataclasses.replace(config, precision=precision), device, is_train=False)
    logger.info("Precision %s: %s", model.precision, why)
    if ckpt_path:
        check_stored_arch(ckpt_path, model.net.arch_options, args.opt)

    out_dir = Path(args.root) / "results" / config.name
    archived = archive(out_dir)  # an earlier evaluation of this name is kept, never overwritten
    try:
        out_dir.mkdir(parents=True)
    except OSError as err:
        raise OutputError(f"Cannot create the results folder {out_dir}: {err.strerror or err}") from err
    attach_log_file(out_dir / f"test_{config.name}.log")
    if archived:
        logger.info("Previous results moved to %s", archived)
    dump_options(dataclasses.replace(config, precision=model.precision).to_dict(), out_dir / f"{config.name}_options.yml")
    results = {}
    for name, ds, loader in sets:
        result = model.predict(loader, name, True)
        images, mos = meta_rows(ds, result["img_path"])
        csv_path = out_dir / f"predictions_{name}.csv"
        write_predictions(csv_path, images, mos, result)  # written first: kept whatever the metrics do
        metrics = score_predictions(result, config.metrics, name, ckpt_path)
        text = "  ".join(f"{k.upper()}: {v:.4f}" for k, v in metrics.items())
        if all(math.isfinite(v) for v in result["pred"]):
            scatter_plot(out_dir / f"scatter_{name}.png", result["pred"], mos,
                         f"{config.name} on {name} ({len(mos)} images, {model.precision})\n{text}",
                         mos_axis_label(ds))
        logger.info("%s (%d images): %s", name, len(ds), text)
        logger.info("Predictions written to %s", csv_path)
        results[name] = metrics
    return results


def cli() -> None:
    run_cli(main)


if __name__ == "__main__":
    cli()
