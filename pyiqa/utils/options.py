"""Read, override and validate experiment YAMLs.

The YAML is parsed with ``yaml.safe_load`` and never mutated afterwards: runtime state (rank, paths,
iteration) lives in :class:`pyiqa.engine.run.Run`. Every fixed section is checked against
the schema below; sections that feed a constructor (``network``, ``datasets.*``, losses, optimisers,
schedulers) are checked against that constructor's signature when it is built. Unknown keys raise with
the closest valid name; legacy keys of the authors' pyiqa-based release are accepted with a notice.
"""
from __future__ import annotations

import copy
import logging
import re
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional

import yaml

from .errors import ConfigError
from .experiment import check_run_name
from .precision import check_precision
from .registry import closest

logger = logging.getLogger(__name__)

# section -> {key: required?}. ``None`` as a schema means "validated by the constructor it feeds".
SCHEMA: Dict[str, Any] = {
    "": {"name": True, "model_type": False, "num_gpu": False, "manual_seed": False, "precision": False,
         "datasets": True, "network": True, "path": False, "train": False, "val": False, "logger": False,
         "dist_params": False, "find_unused_parameters": False},
    "path": {"pretrain_network_g": False, "strict_load_g": False, "resume_state": False,
             "param_key_g": False},
    "train": {"optim": True, "scheduler": False, "total_iter": False, "total_epoch": False,
              "warmup_iter": False, "mos_loss_opt": True, "grad_clip_norm": False},
    "val": {"val_freq": False, "save_img": False, "pbar": False, "key_metric": False, "metrics": True},
    "logger": {"print_freq": False, "save_checkpoint_freq": False, "save_latest_freq": False,
               "keep_checkpoints": False, "use_tb_logger": False, "wandb": False},
    "dist_params": {"backend": False, "port": False},
}

# Keys the release's YAMLs carry that no code here needs: accepted, one notice each, then ignored.
LEGACY_KEYS = {
    "val.save_img": "IQA validation writes no images",
    "logger.wandb": "only TensorBoard logging is supported; use logger.use_tb_logger",
    "dist_params.port": "torchrun sets MASTER_PORT; pass --master_port to torchrun instead",
}

FLOAT_RE = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")

def load_yaml(path: str | Path) -> Dict[str, Any]:
    """Parse a YAML file safely; errors name the file."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Option file not found: {path}")
    try:
        with open(path, "r", encoding="utf-8") as f:
            opt = yaml.safe_load(f)
    except yaml.YAMLError as e:
        raise ConfigError(f"Option file {path} is not valid YAML: {e}") from e
    if not isinstance(opt, dict):
        raise ConfigError(f"Option file {path} must hold a mapping at the top level, got {type(opt).__name__}")
    return opt


def apply_overrides(opt: Dict[str, Any], overrides: Iterable[str]) -> Dict[str, Any]:
    """Return a copy of ``opt`` with ``key.sub=value`` overrides applied.

    Values are parsed with ``yaml.safe_load`` (so ``1e-4``, ``true``, ``[1, 2]``, ``~`` work) and never
    evaluated as code. Intermediate mappings are created when missing; validation then catches typos.
    """
    opt = copy.deepcopy(opt)
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"--force_yml expects key.sub=value, got '{item}'")
        dotted, raw = item.split("=", 1)
        keys = [k for k in dotted.strip().split(".") if k]
        if not keys:
            raise ConfigError(f"--force_yml has an empty key in '{item}'")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as e:
            raise ConfigError(f"--force_yml value of '{dotted}' is not valid YAML: {raw!r} ({e})") from e
        if isinstance(value, str) and FLOAT_RE.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 reads '5e-4' as a string; on a command line it means a number
        node = opt
        for i, key in enumerate(keys[:-1]):
            nxt = node.get(key)
            if nxt is None:
                nxt = node[key] = {}
            if not isinstance(nxt, dict):
                raise ConfigError(f"--force_yml '{dotted}': '{'.'.join(keys[:i + 1])}' is not a mapping")
            node = nxt
        node[keys[-1]] = value
    return opt


def _check_section(section: Dict[str, Any], schema: Dict[str, bool], where: str) -> None:
    if not isinstance(section, dict):
        raise ConfigError(f"'{where or 'top level'}' must be a mapping, got {section!r}")
    prefix = f"{where}." if where else ""
    for key in section:
        dotted = prefix + key
        if key in schema:
            continue
        if dotted in LEGACY_KEYS:
            continue
        raise ConfigError(f"Unknown option '{dotted}'.{closest(key, schema)} Valid keys: {sorted(schema)}")
    for key, required in schema.items():
        if required and section.get(key) is None:
            raise ConfigError(f"Missing required option '{prefix}{key}'")


def check_section(section: Any, schema: Mapping[str, bool], where: str = "") -> Dict[str, Any]:
    """Validate one YAML mapping against ``{key: required}`` and return it.

    Generic form of the checks above for other entry points (e.g. ``train_clip``): unknown keys raise
    ConfigError naming ``where.key`` and the closest valid key; required keys that are missing or null
    raise too. ``None`` (an absent optional section) is returned as an empty mapping.
    """
    if section is None:
        section = {}
    if not isinstance(section, dict):
        raise ConfigError(f"'{where or 'top level'}' must be a mapping, got {section!r}")
    prefix = f"{where}." if where else ""
    for key in section:
        if key not in schema:
            raise ConfigError(f"Unknown option '{prefix}{key}'.{closest(str(key), schema)} "
                              f"Valid keys: {sorted(schema)}")
    for key, required in schema.items():
        if required and section.get(key) is None:
            raise ConfigError(f"Missing required option '{prefix}{key}'")
    return section


def _legacy_notices(opt: Dict[str, Any]) -> List[str]:
    notes = []
    for dotted, reason in LEGACY_KEYS.items():
        section, key = dotted.split(".")
        if isinstance(opt.get(section), dict) and key in opt[section]:
            notes.append(f"Ignoring legacy option '{dotted}': {reason}")
    return notes


def validate_options(opt: Dict[str, Any], is_train: bool) -> List[str]:
    """Check the fixed sections; return notices about ignored legacy keys. Raises ConfigError."""
    _check_section(opt, SCHEMA[""], "")
    check_run_name(opt["name"])
    for section in ("path", "val", "logger", "dist_params"):
        if opt.get(section) is not None:
            _check_section(opt[section], SCHEMA[section], section)
    if is_train:
        if opt.get("train") is None:
            raise ConfigError("Missing required option 'train' (optimiser, loss and schedule)")
        _check_section(opt["train"], SCHEMA["train"], "train")
        tr = opt["train"]
        if tr.get("total_iter") is None and tr.get("total_epoch") is None:
            raise ConfigError("Set 'train.total_iter' or 'train.total_epoch' (how long to train)")
    if opt.get("model_type", "GeneralIQAModel") != "GeneralIQAModel":
        raise ConfigError(f"Unknown model_type '{opt['model_type']}'. Known model types: GeneralIQAModel")
    check_precision(opt.get("precision", "fp32"))
    datasets = opt["datasets"]
    if not isinstance(datasets, dict) or not datasets:
        raise ConfigError("'datasets' must be a mapping of phase name (train, val, test, val_*, test_*) "
                          "to dataset options")
    for key in datasets:
        if dataset_phase(key) is None:
            raise ConfigError(f"Unknown dataset section 'datasets.{key}': names must be train, val, "
                              f"test or start with val_/test_")
    if is_train and "train" not in datasets:
        raise ConfigError("Missing required option 'datasets.train'")
    return _legacy_notices(opt)


def dataset_phase(key: str) -> Optional[str]:
    """'train', 'val' or 'test' for a ``datasets`` section name such as ``val_koniq``."""
    phase = key.split("_")[0]
    return phase if phase in ("train", "val", "test") else None


def parse_options(path: str | Path, overrides: Iterable[str] = (), is_train: bool = True
                  ) -> tuple[Dict[str, Any], List[str]]:
    """Load, override and validate; returns (options, legacy notices)."""
    opt = apply_overrides(load_yaml(path), overrides)
    notices = validate_options(opt, is_train)
    return opt, notices


def dump_options(opt: Dict[str, Any], path: str | Path) -> None:
    """Save the resolved options beside the run (plain YAML, safe to reload)."""
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(opt, f, sort_keys=False)
