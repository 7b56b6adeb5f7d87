"""The experiment YAML of ``train.py`` / ``test.py``: its schema and every check that needs no data.

Parsed with :mod:`pyiqa.utils.options` (``yaml.safe_load`` with duplicate keys refused, ``--force_yml``
overrides) and never mutated afterwards: runtime state (rank, paths, iteration) lives in
:class:`pyiqa.engine.run.Run`. Every fixed section is checked against the schema below; sections that
feed a constructor (``network``, ``datasets.*``, losses, optimisers, schedulers) are checked against
that constructor's signature and value rules. Unknown keys raise with the closest valid name; legacy
keys of the authors' pyiqa-based release are accepted with a notice.
"""
from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any, Dict, Iterable, List

from ..archs.crops import DETERMINISTIC_CROPS
from ..losses import build_loss
from ..metrics import lower_is_better
from ..models.optim import check_optimizer_options, check_scheduler_options
from ..utils.errors import ConfigError
from ..utils.experiment import check_run_name
from ..utils.options import (apply_overrides, check_bool, check_int, check_positive_number, check_section,
                             dataset_phase, load_yaml)
from ..utils.precision import check_precision
from ..utils.threads import MAX_LOADER_WORKERS
from ..utils.registry import METRIC_REGISTRY, closest

# section -> {key: required?}. ``None`` as a schema means "validated by the constructor it feeds".
SCHEMA: Dict[str, Any] = {
    "": {"name": True, "model_type": False, "num_gpu": False, "manual_seed": False, "precision": False,
         "datasets": True, "network": True, "path": False, "train": False, "val": False, "logger": False,
         "dist_params": False, "find_unused_parameters": False},
    "path": {"pretrain_network_g": False, "strict_load_g": False, "resume_state": False,
             "param_key_g": False},
    "train": {"optim": True, "scheduler": False, "total_iter": False, "total_epoch": False,
              "warmup_iter": False, "mos_loss_opt": True, "metric_loss_opt": False, "grad_clip_norm": False,
              "feature_cache": False, "views_per_image": False, "feature_cache_dir": False},
    "val": {"val_freq": False, "val_at_start": False, "save_img": False, "pbar": False, "key_metric": False,
            "metrics": True},
    "logger": {"print_freq": False, "save_checkpoint_freq": False, "save_latest_freq": False,
               "keep_checkpoints": False, "use_tb_logger": False, "wandb": False},
    "dist_params": {"backend": False, "port": False},
}

# Keys the release's YAMLs carry that no code here needs: accepted, one notice each, then ignored.
LEGACY_KEYS = {
    "val.save_img": "IQA validation writes no images",
    "logger.wandb": "only TensorBoard logging is supported; use logger.use_tb_logger",
    "logger.log_imgs_freq": "IQA training logs no images",
    "dist_params.port": "torchrun sets MASTER_PORT; pass --master_port to torchrun instead",
}

def _legacy_notices(opt: Dict[str, Any]) -> List[str]:
    notes = []
    for dotted, reason in LEGACY_KEYS.items():
        section, key = dotted.split(".")
        if isinstance(opt.get(section), dict) and key in opt[section]:
            notes.append(f"Ignoring legacy option '{dotted}': {reason}")
    return notes


def validate_options(opt: Dict[str, Any], is_train: bool) -> List[str]:
    """Check the whole experiment at start-up; return notices about ignored legacy keys.

    Raises:
        ConfigError: naming the key, its value and what is expected, for the first mistake found.
    """
    check_section(opt, SCHEMA[""], "", legacy=LEGACY_KEYS)
    check_run_name(opt["name"])
    for section in ("path", "val", "logger", "dist_params"):
        if opt.get(section) is not None:
            check_section(opt[section], SCHEMA[section], section, legacy=LEGACY_KEYS)
    if opt.get("model_type", "GeneralIQAModel") != "GeneralIQAModel":
        raise ConfigError(f"Unknown model_type '{opt['model_type']}'. Known model types: GeneralIQAModel")
    check_precision(opt.get("precision", "fp32"))
    _check_top_level(opt)
    _check_datasets(opt["datasets"], is_train)
    if is_train:
        if opt.get("train") is None:
            raise ConfigError("Missing required option 'train' (optimiser, loss and schedule)")
        check_section(opt["train"], SCHEMA["train"], "train", legacy=LEGACY_KEYS)
        _check_train(opt["train"], opt["datasets"]["train"])
        _check_train_crop(opt["datasets"]["train"], opt.get("network") or {})
        _check_feature_cache(opt["train"], opt)
    _check_logger(opt.get("logger") or {})
    if opt.get("val") is not None:
        _check_val(opt["val"])
    return _legacy_notices(opt)


def _check_typed(section: Any, where: str) -> None:
    """A ``{type: Name, ...}`` mapping, as every constructor-fed section is."""
    if not isinstance(section, dict) or not isinstance(section.get("type"), str):
        raise ConfigError(f"'{where}' must be a mapping with a 'type' key (e.g. {{type: Adam, lr: 1e-4}}), "
                          f"got {section!r}")


def _check_top_level(opt: Dict[str, Any]) -> None:
    num_gpu = opt.get("num_gpu", "auto")
    if num_gpu != "auto" and not (isinstance(num_gpu, int) and not isinstance(num_gpu, bool) and num_gpu >= 0):
        raise ConfigError(f"'num_gpu' must be an integer >= 0 (0 = CPU) or 'auto', got {num_gpu!r}")
    if "manual_seed" in opt:
        seed = opt["manual_seed"]
        if not (isinstance(seed, int) and not isinstance(seed, bool) and 0 <= seed < 2 ** 32):
            raise ConfigError(f"'manual_seed' must be an integer from 0 to 2**32 - 1, got {seed!r}")
    check_bool(opt, "find_unused_parameters", "find_unused_parameters")
    check_bool(opt.get("path") or {}, "strict_load_g", "path.strict_load_g")


def _check_datasets(datasets: Any, is_train: bool) -> None:
    """Section names and the DataLoader keys (the loader builder re-checks; this fails before any work)."""
    if not isinstance(datasets, dict) or not datasets:
        raise ConfigError("'datasets' must be a mapping of phase name (train, val, test, val_*, test_*) "
                          "to dataset options")
    for key, d_opt in datasets.items():
        if dataset_phase(key) is None:
            raise ConfigError(f"Unknown dataset section 'datasets.{key}': names must be train, val, "
                              f"test or start with val_/test_")
        where = f"datasets.{key}"
        _check_typed(d_opt, where)
        if "batch_size_per_gpu" in d_opt:
            check_int(d_opt["batch_size_per_gpu"], f"{where}.batch_size_per_gpu", 1, integral_floats=False)
        if "num_worker_per_gpu" in d_opt:
            check_int(d_opt["num_worker_per_gpu"], f"{where}.num_worker_per_gpu", 0, integral_floats=False,
                      maximum=MAX_LOADER_WORKERS)
        check_bool(d_opt, "use_shuffle", f"{where}.use_shuffle")
        _check_augment_sizes(d_opt.get("augment"), f"{where}.augment")
    if is_train and "train" not in datasets:
        raise ConfigError("Missing required option 'datasets.train'")


#: Largest side an ``augment`` crop or resize may ask for: an image is upscaled to at least the crop, so
#: ``random_crop: 100000`` would decode 30 GB per image; UniQA's input is 224 and photos rarely exceed 8K.
MAX_AUGMENT_SIDE = 8192


def _check_augment_sizes(augment: Any, where: str) -> None:
    """Sizes of ``random_crop`` / ``center_crop`` / ``resize`` within :data:`MAX_AUGMENT_SIDE` (their
    form is checked where the transforms are built)."""
    if not isinstance(augment, dict):
        return
    for key in ("random_crop", "center_crop", "resize"):
        value = augment.get(key)
        sides = value if isinstance(value, (list, tuple)) else [value]
        for side in sides:
            if isinstance(side, (int, float)) and not isinstance(side, bool) and side > MAX_AUGMENT_SIDE:
                raise ConfigError(f"'{where}.{key}' is {value!r}: at most {MAX_AUGMENT_SIDE} pixels per side "
                                  "(images are upscaled to the crop, so a larger one cannot fit in memory; "
                                  "UniQA's input is 224)")


def _check_train_crop(train_set: Any, network: Dict[str, Any]) -> None:
    """In training the network takes crops of exactly ``network.sample_size`` (default 224): a train
    ``random_crop``/``center_crop`` of another size would fail at the first step, after the set-up."""
    augment = train_set.get("augment") if isinstance(train_set, dict) else None
    if not isinstance(augment, dict):
        return
    size = network.get("sample_size", 224)
    for key in ("random_crop", "center_crop"):
        crop = augment.get(key)
        if isinstance(crop, (list, tuple)) and len(crop) == 2 and crop[0] == crop[1]:
            crop = crop[0]
        if isinstance(crop, int) and not isinstance(crop, bool) and isinstance(size, int) and crop != size:
            raise ConfigError(f"'datasets.train.augment.{key}' is {crop} but the network trains on "
                              f"{size}x{size} crops (network.sample_size: {size}); set {key}: {size}, or "
                              f"network.sample_size: {crop}")


def _check_train(tr: Dict[str, Any], train_set: Dict[str, Any]) -> None:
    """Length, warm-up, clipping, losses, optimiser and schedule of ``train``."""
    if tr.get("total_iter") is None and tr.get("total_epoch") is None:
        raise ConfigError("Set 'train.total_iter' or 'train.total_epoch' (how long to train)")
    for key in ("total_iter", "total_epoch"):  # both may be set: total_epoch wins, as in the trainer
        if tr.get(key) is not None:
            check_int(tr[key], f"train.{key}", 1)
    if tr.get("warmup_iter") is not None:
        check_int(tr["warmup_iter"], "train.warmup_iter", -1)
    if tr.get("grad_clip_norm") is not None:
        check_positive_number(tr["grad_clip_norm"], "train.grad_clip_norm")
    _check_typed(tr["optim"], "train.optim")  # its lr / lr_<module> values: check_optimizer_options
    if tr.get("scheduler") is not None:
        _check_typed(tr["scheduler"], "train.scheduler")
    # checked with the very tables and classes the model builds from, so the two cannot disagree
    check_optimizer_options(tr["optim"])
    check_scheduler_options(tr.get("scheduler"))
    batch = train_set.get("batch_size_per_gpu", 1)
    for key in ("mos_loss_opt", "metric_loss_opt"):
        if key == "metric_loss_opt" and tr.get(key) is None:
            continue
        _check_typed(tr[key], f"train.{key}")
        loss = build_loss(tr[key], f"train.{key}")
        need = getattr(loss, "min_batch_size", 1)
        if batch < need:
            raise ConfigError(f"'train.{key}' ({tr[key]['type']}) needs at least {need} images per batch, but "
                              f"'datasets.train.batch_size_per_gpu' is {batch}; raise the batch size or "
                              f"use another loss")


def _check_feature_cache(tr: Dict[str, Any], opt: Dict[str, Any]) -> None:
    """``train.feature_cache`` / ``views_per_image`` / ``feature_cache_dir``, and what caching needs."""
    check_bool(tr, "feature_cache", "train.feature_cache")
    if not tr.get("feature_cache"):
        for key in ("views_per_image", "feature_cache_dir"):
            if tr.get(key) is not None:
                raise ConfigError(f"'train.{key}' only applies with 'train.feature_cache: true'; set that too "
                                  "or remove this key")
        return
    if tr.get("views_per_image") is not None:
        check_int(tr["views_per_image"], "train.views_per_image", 1, integral_floats=False)
    if tr.get("feature_cache_dir") is not None and not isinstance(tr["feature_cache_dir"], str):
        raise ConfigError(f"'train.feature_cache_dir' must be a folder path, got {tr['feature_cache_dir']!r}")
    crop = (opt.get("network") or {}).get("test_crop", "random10")
    if crop not in DETERMINISTIC_CROPS:
        raise ConfigError(f"'network.test_crop: {crop}' draws new crops at every evaluation, so the feature "
                          f"cache cannot store them; use one of {list(DETERMINISTIC_CROPS)} with "
                          "'train.feature_cache: true' (random10 draws the same 10 crops of an image every time)")
    for key, d_opt in opt["datasets"].items():
        if isinstance(d_opt, dict) and d_opt.get("img_range", 1) != 1:
            raise ConfigError(f"'datasets.{key}.img_range' is {d_opt['img_range']!r}; the feature cache stores "
                              "the embeddings of [0, 1] images (UniQA's input), so it needs img_range: 1")


def _check_logger(log: Dict[str, Any]) -> None:
    for key in ("print_freq", "save_latest_freq", "save_checkpoint_freq", "keep_checkpoints"):
        if key in log and not (key == "save_checkpoint_freq" and log[key] is None):  # null: none numbered
            check_int(log[key], f"logger.{key}", 1)
    check_bool(log, "use_tb_logger", "logger.use_tb_logger")


def _check_val(val: Dict[str, Any]) -> None:
    """Frequency, metrics (registered types, valid options) and the key metric among them."""
    if "val_freq" in val:
        check_int(val["val_freq"], "val.val_freq", 1)
    check_bool(val, "pbar", "val.pbar")
    check_bool(val, "val_at_start", "val.val_at_start")
    metrics = val["metrics"]
    if not isinstance(metrics, dict) or not metrics:
        raise ConfigError(f"'val.metrics' must map names to metrics, e.g. {{srcc: {{type: calculate_srcc}}}}, "
                          f"got {metrics!r}")
    for name, m_opt in metrics.items():
        where = f"val.metrics.{name}"
        lower_is_better(m_opt, where)  # ConfigError for an unknown type, listing the known ones
        kwargs = {k: v for k, v in m_opt.items() if k != "type"} if isinstance(m_opt, dict) else {}
        fn = METRIC_REGISTRY.get(m_opt["type"] if isinstance(m_opt, dict) else m_opt)
        valid = [p for p in inspect.signature(fn).parameters if p not in ("pred", "target")]
        for key in kwargs:
            if key in ("pred", "target"):
                raise ConfigError(f"'{where}.{key}' cannot be set: predictions and targets come from the "
                                  f"evaluation data; remove this key")
            if key not in valid:
                raise ConfigError(f"Unknown option '{where}.{key}'.{closest(str(key), valid)} Valid keys: "
                                  f"{valid or 'none'}")
    key = val.get("key_metric")
    if key is not None and key not in metrics:
        raise ConfigError(f"'val.key_metric' is {key!r}, which is not one of val.metrics: {list(metrics)}."
                          f"{closest(str(key), metrics)} It picks net_best.pth, so it must be computed")


def parse_options(path: str | Path, overrides: Iterable[str] = (), is_train: bool = True
                  ) -> tuple[Dict[str, Any], List[str]]:
    """Load, override and validate; returns (options, legacy notices)."""
    opt = apply_overrides(load_yaml(path), overrides)
    notices = validate_options(opt, is_train)
    return opt, notices


