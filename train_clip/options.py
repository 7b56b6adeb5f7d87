"""The train_clip YAML: its sections, their keys and the checks that need no data or model.

Parsing, ``--force_yml`` overrides and per-section key checks come from ``pyiqa.utils.options`` so both
trainers behave alike: ``yaml.safe_load``, unknown keys raise with the closest valid name, and the
options are never mutated (defaults are read with ``.get``; runtime state lives in the trainer).
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Iterable

from pyiqa.utils.errors import ConfigError
from pyiqa.utils.experiment import check_run_name
from pyiqa.utils.options import apply_overrides, check_int, check_section, load_yaml
from pyiqa.utils.precision import check_precision

# section -> {key: required?}
TOP = {"name": True, "num_gpu": False, "manual_seed": False, "precision": False, "model": True,
       "data": True, "train": True, "eval": False, "logger": False, "export": False,
       "dist_params": False, "path": False}
MODEL = {"backbone": False, "model_name": False, "pretrained": False, "config": False,
         "image_size": False, "grad_checkpointing": False, "lock_vision_blocks": False,
         "lock_text_blocks": False, "init_seed": False}
DATA = {"train": True, "num_workers": False, "transform": False, "max_failed_fraction": False}
TRAIN = {"batch_size": True, "accum_steps": False, "total_steps": False, "epochs": False, "lr": True,
         "betas": False, "eps": False, "weight_decay": False, "warmup_steps": False, "min_lr": False,
         "grad_clip_norm": False, "local_loss": False, "gather_with_grad": False}
EVAL = {"eval_freq": False, "eval_at_start": False, "iqa": False, "prompts": False, "test_crop": False,
        "num_crops": False, "batch_size": False, "retrieval": False}
RETRIEVAL = {"sources": True, "max_pairs": False, "batch_size": False}
LOGGER = {"print_freq": False, "save_checkpoint_freq": False, "keep_checkpoints": False,
          "use_tb_logger": False}
EXPORT = {"filename": False, "dtype": False, "verify": False}
DIST = {"backend": False}
PATH = {"resume_state": False}

EXPORT_DTYPES = ("fp32", "fp16", "bf16")


def parse_options(path: str | Path, overrides: Iterable[str] = ()) -> Dict[str, Any]:
    """Load, override and validate a train_clip YAML. Raises ConfigError naming the bad key."""
    opt = apply_overrides(load_yaml(path), overrides)
    validate(opt)
    return opt


def validate(opt: Dict[str, Any]) -> None:
    """Key-level checks of every section, plus the value checks that need no data or model."""
    check_section(opt, TOP)
    check_run_name(opt["name"])
    model = check_section(opt["model"], MODEL, "model")
    inits = [k for k in ("backbone", "model_name", "config") if model.get(k) is not None]
    if len(inits) != 1:
        raise ConfigError(
            "'model' needs exactly one starting point: 'backbone' (a CLIP file in any format pyiqa "
            "loads, 'random' or 'random-tiny'), 'model_name' (an open_clip model name, with "
            "'pretrained' = a local checkpoint or nothing for random weights) or 'config' (an open_clip "
            f"model config mapping, or a preset name); got {inits or 'none'}")
    if model.get("pretrained") is not None and model.get("model_name") is None:
        raise ConfigError("'model.pretrained' needs 'model.model_name' (the open_clip architecture the "
                          "checkpoint is for); for an OpenAI-format file use 'model.backbone' instead")
    for key in ("lock_vision_blocks", "lock_text_blocks"):
        check_int(model.get(key, 0), f"model.{key}", 0, integral_floats=False)

    data = check_section(opt["data"], DATA, "data")
    if not isinstance(data["train"], list) or not data["train"]:
        raise ConfigError("'data.train' must be a non-empty list of sources, e.g. "
                          "[{type: json, path: captions.json}]")
    check_int(data.get("num_workers", 0), "data.num_workers", 0, integral_floats=False)
    frac = data.get("max_failed_fraction", 0.01)
    if not isinstance(frac, (int, float)) or not 0 <= frac < 1:
        raise ConfigError(f"'data.max_failed_fraction' must be a number in [0, 1), got {frac!r}")

    train = check_section(opt["train"], TRAIN, "train")
    check_int(train["batch_size"], "train.batch_size", 1, integral_floats=False)
    check_int(train.get("accum_steps", 1), "train.accum_steps", 1, integral_floats=False)
    if (train.get("total_steps") is None) == (train.get("epochs") is None):
        raise ConfigError("Set exactly one of 'train.total_steps' and 'train.epochs' (how long to train)")
    for key in ("total_steps", "epochs"):
        if train.get(key) is not None:
            check_int(train[key], f"train.{key}", 1, integral_floats=False)
    check_int(train.get("warmup_steps", 0), "train.warmup_steps", 0, integral_floats=False)
    for key in ("lr", "eps", "weight_decay", "min_lr", "grad_clip_norm"):
        if train.get(key) is not None:
            _number(train[key], f"train.{key}")
    betas = train.get("betas", [0.9, 0.98])
    if not (isinstance(betas, (list, tuple)) and len(betas) == 2):
        raise ConfigError(f"'train.betas' must be two numbers like [0.9, 0.98], got {betas!r}")

    ev = check_section(opt.get("eval"), EVAL, "eval")
    if ev.get("iqa") is not None and not isinstance(ev["iqa"], dict):
        raise ConfigError("'eval.iqa' must map a name to a pyiqa dataset section "
                          "(type, dataroot_target, meta_info_file, ...)")
    if ev.get("retrieval") is not None:
        check_section(ev["retrieval"], RETRIEVAL, "eval.retrieval")
    check_section(opt.get("logger"), LOGGER, "logger")
    export = check_section(opt.get("export"), EXPORT, "export")
    filename = export.get("filename", "uniqa_backbone.pt")
    if not (isinstance(filename, str) and Path(filename).name == filename and filename.endswith((".pt", ".pth"))
            and not filename.startswith(".")):
        raise ConfigError(f"'export.filename' must be a plain file name ending in .pt or .pth, written in the "
                          f"experiment folder (no folders, so it cannot replace a training state or another "
                          f"file), got {filename!r}")
    if export.get("dtype", "fp32") not in EXPORT_DTYPES:
        raise ConfigError(f"'export.dtype' must be one of {list(EXPORT_DTYPES)}, got {export['dtype']!r}")
    check_section(opt.get("dist_params"), DIST, "dist_params")
    check_section(opt.get("path"), PATH, "path")
    check_precision(opt.get("precision", "auto"))


def per_rank_batch(global_batch: int, world_size: int, accum_steps: int) -> int:
    """Images each process loads per optimiser step; raises when the global batch does not split
    evenly over the processes and accumulation steps."""
    if global_batch % world_size:
        raise ConfigError(
            f"train.batch_size={global_batch} (the global batch per optimiser step) is not divisible by "
            f"the world size {world_size}; use a multiple of {world_size}, e.g. "
            f"{max(world_size, global_batch // world_size * world_size)}")
    per_rank = global_batch // world_size
    if per_rank % accum_steps:
        raise ConfigError(f"train.batch_size / world size = {per_rank} images per process is not "
                          f"divisible by train.accum_steps={accum_steps}")
    return per_rank


def _number(value: Any, where: str) -> float:
    try:
        return float(value)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"'{where}' must be a number, got {value!r}") from err
