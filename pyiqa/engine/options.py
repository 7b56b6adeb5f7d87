"""The experiment YAML of ``train.py`` / ``test.py``: typed sections, their defaults and every check
that needs no data.

Parsed once, at start-up, with :mod:`pyiqa.utils.options` (``yaml.safe_load`` with duplicate keys
refused, ``--force_yml`` overrides) into an :class:`ExperimentConfig`: each fixed section is a frozen
dataclass whose fields declare their default, check and documentation (the README's key table is
written from them), so every module receives the typed section it reads and no default is written
twice. Sections that feed a constructor (``network``, ``datasets.*``, losses, optimisers, schedulers,
metrics) stay mappings, checked against that constructor's signature and value rules. Unknown keys
raise with the closest valid name; legacy keys of the authors' pyiqa-based release are accepted with a
notice. Runtime state (rank, paths, iteration) lives in :class:`pyiqa.engine.run.Run`.
"""
from __future__ import annotations

import dataclasses
import inspect
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Tuple, Union

from ..data.feature_cache import DEFAULT_VIEWS, check_cacheable_crop
from ..data.loader_options import LoaderOptions, loader_options
from ..losses import build_loss
from ..metrics import DEFAULT_METRICS, lower_is_better
from ..models.compiled_step import check_compile
from ..models.optim import check_optimizer_options, check_scheduler_options
from ..utils.errors import ConfigError
from ..utils.option_fields import REQUIRED, markdown_rows, option, parse_section, to_plain
from ..utils.options import (apply_overrides, check_flag, check_int, check_positive_number, dataset_phase,
                             load_yaml)
from ..utils.precision import default_precision
from ..utils.registry import METRIC_REGISTRY, closest
from .run_options import RunLoggerOptions, RunOptions, RunPathOptions, check_positive_int, check_text

# Keys the release's YAMLs carry that no code here needs: accepted, one notice each, then ignored.
LEGACY_KEYS = {
    "model_type": "the trainer has one model class; the release's only value, GeneralIQAModel, means it",
    "val.save_img": "IQA validation writes no images",
    "logger.wandb": "only TensorBoard logging is supported; use logger.use_tb_logger",
    "logger.log_imgs_freq": "IQA training logs no images",
    "dist_params.port": "torchrun sets MASTER_PORT; pass --master_port to torchrun instead",
}
RELEASE_MODEL_TYPE = "GeneralIQAModel"


def _typed(value: Any, where: str) -> Dict[str, Any]:
    """A ``{type: Name, ...}`` mapping, as every constructor-fed section is."""
    if not isinstance(value, dict) or not isinstance(value.get("type"), str):
        raise ConfigError(f"'{where}' must be a mapping with a 'type' key (e.g. {{type: Adam, lr: 1e-4}}), "
                          f"got {value!r}")
    return value


def _typed_or_none(value: Any, where: str) -> Optional[Dict[str, Any]]:
    return None if value is None else _typed(value, where)


def _warmup(value: Any, where: str) -> int:
    return check_int(value, where, -1)


def _positive(value: Any, where: str) -> float:
    check_positive_number(value, where)
    return float(value)


def _views(value: Any, where: str) -> int:
    return check_int(value, where, 1, integral_floats=False)


def _folder(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"'{where}' must be a folder path, got {value!r}")
    return value


def _metrics(value: Any, where: str) -> Dict[str, Any]:
    """Names -> metric sections: registered types, their valid options."""
    if not isinstance(value, dict) or not value:
        raise ConfigError(f"'{where}' must map names to metrics, e.g. {{srcc: {{type: calculate_srcc}}}}, "
                          f"got {value!r}")
    for name, m_opt in value.items():
        here = f"{where}.{name}"
        lower_is_better(m_opt, here)  # ConfigError for an unknown type, listing the known ones
        kwargs = {k: v for k, v in m_opt.items() if k != "type"} if isinstance(m_opt, dict) else {}
        fn = METRIC_REGISTRY.get(m_opt["type"] if isinstance(m_opt, dict) else m_opt)
        valid = [p for p in inspect.signature(fn).parameters if p not in ("pred", "target")]
        for key in kwargs:
            if key in ("pred", "target"):
                raise ConfigError(f"'{here}.{key}' cannot be set: predictions and targets come from the "
                                  f"evaluation data; remove this key")
            if key not in valid:
                raise ConfigError(f"Unknown option '{here}.{key}'.{closest(str(key), valid)} Valid keys: "
                                  f"{valid or 'none'}")
    return value


@dataclasses.dataclass(frozen=True, kw_only=True)
class PathOptions(RunPathOptions):
    """``path``: the adapter weights a run starts from (training) or evaluates (``test.py``)."""

    pretrain_network_g: Optional[str] = option(None, "adapter weights to start from (train) or to evaluate "
                                               "(test)", check=check_text)
    strict_load_g: bool = option(True, "every tensor of the network must be in that file", check=check_flag)
    param_key_g: str = option("params", "the key of the checkpoint that holds the tensors (the release's "
                              "files: `params`)", check=check_text, nullable=True)


@dataclasses.dataclass(frozen=True, kw_only=True)
class LoggerOptions(RunLoggerOptions):
    """``logger``: the shared keys, plus numbered network snapshots."""

    save_checkpoint_freq: Optional[int] = option(None, "interval (iterations) of numbered network snapshots "
                                                 "`net_<iter>.pth`, never pruned", check=check_positive_int)


@dataclasses.dataclass(frozen=True, kw_only=True)
class TrainOptions:
    """``train``: length, optimisation and the feature cache."""

    optim: Dict[str, Any] = option(REQUIRED, "`Adam`, `AdamW`, `SGD` with torch's arguments; `lr_<module>` (e.g. "
                                   "`lr_score_level: 1e-2`) gives a trainable module (`adapter`, `score_level`) "
                                   "its own learning rate, as in pyiqa", check=_typed)
    mos_loss_opt: Dict[str, Any] = option(REQUIRED, "`MSELoss`, `L1Loss`, `PLCCLoss`, each with `loss_weight`",
                                          check=_typed)
    metric_loss_opt: Optional[Dict[str, Any]] = option(None, "an optional second loss term, added to the first "
                                                       "(logged as `l_metric`)", check=_typed_or_none)
    scheduler: Optional[Dict[str, Any]] = option(
        None, "`CosineAnnealingLR`, `MultiStepLR`, `CosineAnnealingRestartLR` (`periods`, `restart_weights`, "
        "`eta_min`, as pyiqa), `CosineAnnealingWarmRestarts`; steps once per epoch when `total_epoch` is set, "
        "else per iteration", check=_typed_or_none, shown_default="constant learning rate")
    total_iter: Optional[int] = option(None, "length in iterations (set this or `total_epoch`)",
                                       check=check_positive_int)
    total_epoch: Optional[int] = option(None, "length in epochs (wins over `total_iter` when both are set)",
                                        check=check_positive_int)
    warmup_iter: int = option(-1, "linear warm-up iterations (`-1`: none)", check=_warmup, nullable=True)
    grad_clip_norm: Optional[float] = option(None, "gradient clipping (largest global norm)", check=_positive)
    feature_cache: bool = option(False, "train the adapter on cached tower embeddings; see \"the feature "
                                 "cache\"", check=check_flag)
    views_per_image: Optional[int] = option(None, "cached views per training image", check=_views,
                                            shown_default=f"`{DEFAULT_VIEWS}` with the feature cache")
    feature_cache_dir: Optional[str] = option(None, "where the cache is kept", check=_folder,
                                              shown_default="`<--root>/feature_cache`")
    compile: Union[bool, str] = option(False, "compile the score head's step with `torch.compile` (`true`: "
                                       "`reduce-overhead`, i.e. CUDA graphs, on a GPU; or a torch.compile mode); "
                                       "for the launch-bound cached step on GPUs", check=check_compile)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ValOptions:
    """``val``: how and how often the ``val*`` sets are evaluated (and the metrics of ``test*``)."""

    metrics: Dict[str, Any] = option(REQUIRED, "`calculate_srcc`, `calculate_plcc` (optional `fit_logistic`), "
                                     "`calculate_krcc`, `calculate_rmse`", check=_metrics)
    val_freq: Optional[int] = option(None, "validation interval (iterations)", check=check_positive_int,
                                     shown_default="one epoch", nullable=False)
    val_at_start: bool = option(False, "also validate (and test) before the first iteration: the untrained "
                                "baseline", check=check_flag)
    key_metric: Optional[str] = option(None, "the metric that picks `net_best.pth`",
                                       shown_default="the first of `metrics`")
    pbar: bool = option(False, "progress bars while evaluating", check=check_flag)


def _train(value: Any, where: str) -> TrainOptions:
    if value is None:
        raise ConfigError("Missing required option 'train' (optimiser, loss and schedule)")
    return parse_section(TrainOptions, value, where, legacy=LEGACY_KEYS)


def _val(value: Any, where: str) -> ValOptions:
    val = parse_section(ValOptions, value, where, legacy=LEGACY_KEYS)
    key = val.key_metric
    if key is not None and key not in val.metrics:
        raise ConfigError(f"'{where}.key_metric' is {key!r}, which is not one of {where}.metrics: "
                          f"{list(val.metrics)}.{closest(str(key), val.metrics)} It picks net_best.pth, so it "
                          "must be computed")
    return val


def _datasets(value: Any, where: str) -> Dict[str, Any]:
    """Section names and their loader keys (the dataset classes check the rest when built)."""
    if not isinstance(value, dict) or not value:
        raise ConfigError("'datasets' must be a mapping of phase name (train, val, test, val_*, test_*) "
                          "to dataset options")
    for key, d_opt in value.items():
        if dataset_phase(key) is None:
            raise ConfigError(f"Unknown dataset section 'datasets.{key}': names must be train, val, "
                              f"test or start with val_/test_")
        here = f"{where}.{key}"
        _typed(d_opt, here)
        loader_options(d_opt, here)
        _check_augment_sizes(d_opt.get("augment"), f"{here}.augment")
    return value


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExperimentConfig(RunOptions):
    """A whole experiment YAML of ``train.py`` / ``test.py``, parsed and resolved."""

    datasets: Dict[str, Any] = option(REQUIRED, "`train`, `val`, `test`, `val_*`, `test_*`: dataset sections "
                                      "(see below)", check=_datasets)
    network: Dict[str, Any] = option(REQUIRED, "the network's constructor options (see below)", check=_typed)
    path: PathOptions = dataclasses.field(default_factory=PathOptions)
    logger: LoggerOptions = dataclasses.field(default_factory=LoggerOptions)
    train: Optional[TrainOptions] = option(None, "(section above)", check=_train, nullable=False)
    val: Optional[ValOptions] = option(None, "(section above); absent or null: no validation", check=_val)
    find_unused_parameters: bool = option(False, "DDP's flag (only the adapter and score levels are "
                                          "synchronised)", check=check_flag)

    def loader(self, key: str) -> LoaderOptions:
        """The DataLoader keys of ``datasets.<key>``, typed."""
        return loader_options(self.datasets[key], f"datasets.{key}")

    @property
    def metrics(self) -> Dict[str, Any]:
        """What validation and testing compute: ``val.metrics``, else SRCC / PLCC / KRCC."""
        return self.val.metrics if self.val is not None else DEFAULT_METRICS

    def to_dict(self) -> Dict[str, Any]:
        """The resolved options as plain YAML data: what ``<name>_options.yml`` and checkpoints store
        (re-parsing it gives an equal config)."""
        return to_plain(self)


def _legacy_notices(opt: Dict[str, Any]) -> List[str]:
    notes = []
    for dotted, reason in LEGACY_KEYS.items():
        section, _, key = dotted.rpartition(".")
        holder = opt.get(section) if section else opt
        if isinstance(holder, dict) and key in holder:
            notes.append(f"Ignoring legacy option '{dotted}': {reason}")
    return notes


def parse_experiment(opt: Dict[str, Any], is_train: bool) -> Tuple[ExperimentConfig, List[str]]:
    """Check a whole experiment mapping at start-up and resolve its defaults; returns the typed config
    and notices about ignored legacy keys. ``test.py`` (``is_train`` False) ignores ``train``.

    Raises:
        ConfigError: naming the key, its value and what is expected, for the first mistake found.
    """
    if not isinstance(opt, dict):
        raise ConfigError(f"'top level' must be a mapping, got {opt!r}")
    model_type = opt.get("model_type", RELEASE_MODEL_TYPE)
    if model_type != RELEASE_MODEL_TYPE:
        raise ConfigError(f"Unknown model_type '{model_type}': the trainer has one model; remove the key or "
                          f"write the release's model_type: {RELEASE_MODEL_TYPE}")
    mapping = dict(opt) if is_train else {k: v for k, v in opt.items() if k != "train"}
    if is_train and mapping.get("train") is None:
        mapping["train"] = None  # refused by the check, naming the section
    config = parse_section(ExperimentConfig, mapping, "", legacy=LEGACY_KEYS)
    if is_train:
        _check_train(config.train, config.datasets["train"] if "train" in config.datasets else None)
        _check_train_crop(config.datasets["train"], config.network)
        _check_feature_cache(config)
    elif "train" in opt:
        config = dataclasses.replace(config, train=None)
    return _resolve(config), _legacy_notices(opt)


def _resolve(config: ExperimentConfig) -> ExperimentConfig:
    """Defaults that depend on other keys, written out so the saved options say what ran."""
    changes: Dict[str, Any] = {}
    train = config.train
    if config.precision is None and train is not None:  # test.py: the checkpoint's record decides
        changes["precision"] = default_precision(train.feature_cache)
    if train is not None and train.feature_cache and train.views_per_image is None:
        changes["train"] = dataclasses.replace(train, views_per_image=DEFAULT_VIEWS)
    if config.val is not None and config.val.key_metric is None:
        changes["val"] = dataclasses.replace(config.val, key_metric=next(iter(config.val.metrics)))
    return dataclasses.replace(config, **changes) if changes else config


def validate_options(opt: Dict[str, Any], is_train: bool) -> List[str]:
    """Check an experiment mapping (see :func:`parse_experiment`); returns the legacy notices."""
    return parse_experiment(opt, is_train)[1]


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


def _check_train(tr: TrainOptions, train_set: Optional[Dict[str, Any]]) -> None:
    """Length, losses, optimiser and schedule of ``train`` against each other and the train loader."""
    if train_set is None:
        raise ConfigError("Missing required option 'datasets.train'")
    if tr.total_iter is None and tr.total_epoch is None:  # both may be set: total_epoch wins
        raise ConfigError("Set 'train.total_iter' or 'train.total_epoch' (how long to train)")
    # checked with the very tables and classes the model builds from, so the two cannot disagree
    check_optimizer_options(tr.optim)
    check_scheduler_options(tr.scheduler)
    batch = loader_options(train_set, "datasets.train").batch_size_per_gpu
    for key in ("mos_loss_opt", "metric_loss_opt"):
        section = getattr(tr, key)
        if section is None:
            continue
        loss = build_loss(section, f"train.{key}")
        need = getattr(loss, "min_batch_size", 1)
        if batch < need:
            raise ConfigError(f"'train.{key}' ({section['type']}) needs at least {need} images per batch, but "
                              f"'datasets.train.batch_size_per_gpu' is {batch}; raise the batch size or "
                              f"use another loss")


def _check_feature_cache(config: ExperimentConfig) -> None:
    """What caching needs: deterministic test crops and [0, 1] images; its keys only with it."""
    tr = config.train
    if not tr.feature_cache:
        for key in ("views_per_image", "feature_cache_dir"):
            if getattr(tr, key) is not None:
                raise ConfigError(f"'train.{key}' only applies with 'train.feature_cache: true'; set that too "
                                  "or remove this key")
        return
    check_cacheable_crop(config.network.get("test_crop", "random10"))
    for key, d_opt in config.datasets.items():
        if d_opt.get("img_range", 1) != 1:
            raise ConfigError(f"'datasets.{key}.img_range' is {d_opt['img_range']!r}; the feature cache stores "
                              "the embeddings of [0, 1] images (UniQA's input), so it needs img_range: 1")


def parse_options(path: str | Path, overrides: Iterable[str] = (), is_train: bool = True
                  ) -> Tuple[ExperimentConfig, List[str]]:
    """Load, override and parse an experiment YAML; returns (typed config, legacy notices)."""
    return parse_experiment(apply_overrides(load_yaml(path), overrides), is_train)


KEY_TABLE_START = "<!-- key table: generated by scripts/key_table.py from pyiqa/engine/options.py -->"
KEY_TABLE_END = "<!-- end of key table -->"


def key_table() -> List[str]:
    """The README's table of the fixed keys, written from their declarations (the test suite checks
    that the README holds exactly this)."""
    rows = ["| key | default | meaning |", "|---|---|---|"]
    rows += markdown_rows(ExperimentConfig, skip=("datasets", "network", "train", "val"))
    rows += markdown_rows(TrainOptions, "train")
    rows += markdown_rows(ValOptions, "val")
    rows += markdown_rows(LoaderOptions, "datasets.<phase>")
    return rows
