"""The train_clip YAML: its sections, their keys and every value check that needs no data or model.

Parsing, ``--force_yml`` overrides and the generic checks come from ``pyiqa.utils.options`` so both
trainers behave alike: ``yaml.safe_load``, unknown keys raise with the closest valid name, and the
options are never mutated (defaults are read with ``.get``; runtime state lives in the trainer).

Every value the trainer reads is checked here, at start-up, before any data, model or experiment folder
exists: numbers are finite and within a sane range, integers are integers (never booleans or 4.5) below
a sane bound, ranges such as ``data.transform.scale`` have two ordered values. A key written with an
empty value (``lr:``) is checked like any other value: only the keys whose null means something (e.g.
``model.image_size: ~``, the checkpoint's own size) accept it.
"""
from __future__ import annotations

import dataclasses
import importlib.util
from pathlib import Path
from typing import Any, Dict, Iterable, Tuple

from open_clip.transform import AugmentationCfg

from pyiqa.archs.crops import TEST_CROPS
from pyiqa.archs.uniqa_arch import PROMPT_GROUPS
from pyiqa.data.demo_dataset import NUM_SPLITS
from pyiqa.data.loader_options import loader_options
from pyiqa.engine.run_options import RunLoggerOptions, RunOptions, check_positive_int
from pyiqa.utils.errors import ConfigError
from pyiqa.utils.options import (apply_overrides, check_bool, check_float, check_floats, check_int,
                                 check_section, load_yaml)
from pyiqa.utils.option_fields import is_required, option, parse_section
from pyiqa.utils.precision import check_precision
from pyiqa.utils.registry import closest
from train_clip.data import SOURCE_KEYS
from train_clip.optim import DEFAULTS

@dataclasses.dataclass(frozen=True, kw_only=True)
class ClipLoggerOptions(RunLoggerOptions):
    """``logger``: the shared keys; train_clip prints more often by default."""

    print_freq: int = option(50, "console and TensorBoard interval (steps)", check=check_positive_int)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ClipRunOptions(RunOptions):
    """The top-level keys train_clip shares with the adapter trainer (the run runtime reads these)."""

    precision: str = option("auto", RunOptions.__dataclass_fields__["precision"].metadata["doc"],
                            check=check_precision)
    logger: ClipLoggerOptions = dataclasses.field(default_factory=ClipLoggerOptions)


# section -> {key: required?}: the shared run keys, then train_clip's own sections
TOP = {**{f.name: is_required(f) for f in dataclasses.fields(ClipRunOptions)},
       "model": True, "data": True, "train": True, "eval": False, "export": False}
MODEL = {"backbone": False, "model_name": False, "pretrained": False, "config": False,
         "image_size": False, "grad_checkpointing": False, "lock_vision_blocks": False,
         "lock_text_blocks": False, "init_seed": False}
DATA = {"train": True, "num_workers": False, "transform": False, "max_failed_fraction": False}
# open_clip's augmentation options, read from its dataclass so a new open_clip field is known here
TRANSFORM = {f.name: False for f in dataclasses.fields(AugmentationCfg)}
TRAIN = {"batch_size": True, "accum_steps": False, "total_steps": False, "epochs": False, "lr": True,
         "betas": False, "eps": False, "weight_decay": False, "warmup_steps": False, "min_lr": False,
         "grad_clip_norm": False, "local_loss": False, "gather_with_grad": False}
EVAL = {"eval_freq": False, "eval_at_start": False, "iqa": False, "prompts": False, "test_crop": False,
        "num_crops": False, "batch_size": False, "retrieval": False}
RETRIEVAL = {"sources": True, "max_pairs": False, "batch_size": False}
EXPORT = {"filename": False, "dtype": False, "verify": False}

EXPORT_DTYPES = ("fp32", "fp16", "bf16")

# Sane bounds: far beyond any real run, small enough that a typo fails here instead of exhausting memory.
MAX_SEED = 2 ** 32 - 1          # NumPy's seed range
MAX_BATCH = 1 << 20             # global batch; the largest CLIP runs use ~160k
MAX_WORKERS = 256               # DataLoader processes per training process
MAX_IMAGE_SIZE = 2048           # a ViT-B/16 at 2048 px already has 16k tokens per image
MIN_IMAGE_SIZE = 16
MAX_REPEAT = 10_000             # a source repeated N times is held N times in memory
MAX_CROPS = 1000
MAX_LR = 1.0                    # AdamW: CLIP trains at 5e-4 from scratch, 1e-5 when fine-tuning
MAX_WEIGHT_DECAY = 10.0         # decoupled decay: the step shrinks weights by lr * weight_decay
MAX_EPS = 1.0
MAX_COLOR_JITTER = 1.0          # brightness/contrast/saturation 1 already spans black to double
MAX_HUE = 0.5                   # torchvision's limit
MAX_RATIO = 10.0                # crop aspect ratio (width / height)
MAX_ERASE_COUNT = 100


def parse_options(path: str | Path, overrides: Iterable[str] = ()) -> Tuple[Dict[str, Any], ClipRunOptions]:
    """Load, override and validate a train_clip YAML; returns (the options, their shared run part).
    Raises ConfigError naming the bad key."""
    opt = apply_overrides(load_yaml(path), overrides)
    return opt, validate(opt)


def validate(opt: Dict[str, Any]) -> ClipRunOptions:
    """Key-level checks of every section, plus the value checks that need no data or model; returns
    the typed run part (name, seed, devices, precision, path, logger, dist_params)."""
    check_section(opt, TOP)
    logger_section = opt.get("logger")
    if isinstance(logger_section, dict) and "save_checkpoint_freq" in logger_section:
        raise ConfigError("'logger.save_checkpoint_freq' is 'logger.save_latest_freq' in train_clip now: the "
                          "interval of the training state a killed run resumes from, as in the adapter trainer "
                          "(where save_checkpoint_freq writes numbered network snapshots); rename the key")
    run = parse_section(ClipRunOptions, {k: v for k, v in opt.items() if k not in ("model", "data", "train",
                                                                                   "eval", "export")})
    _check_model(check_section(opt["model"], MODEL, "model"))
    _check_data(check_section(opt["data"], DATA, "data"))
    _check_train(check_section(opt["train"], TRAIN, "train"))
    _check_eval(check_section(opt.get("eval"), EVAL, "eval"))
    _check_export(check_section(opt.get("export"), EXPORT, "export"))
    return run


def _text(value: Any, where: str, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"'{where}' must be {what}, got {value!r}")
    return value


def _seed(value: Any, where: str) -> int:
    return check_int(value, where, 0, integral_floats=False, maximum=MAX_SEED)


def _check_model(model: Dict[str, Any]) -> None:
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
    for key, what in (("backbone", "a CLIP file path, 'random' or 'random-tiny'"),
                      ("model_name", "an open_clip model name such as ViT-B-16"),
                      ("pretrained", "the path of a local checkpoint")):
        if model.get(key) is not None:
            _text(model[key], f"model.{key}", what)
    if model.get("config") is not None and not isinstance(model["config"], (str, dict)):
        raise ConfigError(f"'model.config' must be a preset name or an open_clip model config mapping, "
                          f"got {model['config']!r}")
    if model.get("image_size") is not None:  # null: the size the checkpoint or config was made for
        check_int(model["image_size"], "model.image_size", MIN_IMAGE_SIZE, integral_floats=False,
                  maximum=MAX_IMAGE_SIZE)
    check_bool(model, "grad_checkpointing", "model.grad_checkpointing")
    for key in ("lock_vision_blocks", "lock_text_blocks"):
        check_int(model.get(key, 0), f"model.{key}", 0, integral_floats=False)
    if "init_seed" in model:
        _seed(model["init_seed"], "model.init_seed")


def _check_data(data: Dict[str, Any]) -> None:
    if not isinstance(data["train"], list) or not data["train"]:
        raise ConfigError("'data.train' must be a non-empty list of sources, e.g. "
                          "[{type: json, path: captions.json}]")
    check_sources(data["train"], "data.train")
    check_int(data.get("num_workers", 0), "data.num_workers", 0, integral_floats=False, maximum=MAX_WORKERS)
    check_float(data.get("max_failed_fraction", 0.01), "data.max_failed_fraction", 0, 1, max_open=True,
                hint="the fraction of unreadable images tolerated")
    if data.get("transform") is not None:
        check_transform(check_section(data["transform"], TRANSFORM, "data.transform"), "data.transform")


def check_sources(sources: Any, where: str) -> None:
    """Values of each image-caption source (its type and key names are checked where it is read,
    :func:`train_clip.data.build_samples`; entries it would refuse are left to it)."""
    for k, src in enumerate(sources):
        here = f"{where}[{k}]"
        if not isinstance(src, dict) or src.get("type") not in SOURCE_KEYS:
            continue
        for key in ("path", "root", "data_root", "img_key", "caption_key"):
            if src.get(key) is not None:  # a missing path is reported where the source is read
                _text(src[key], f"{here}.{key}", "a non-empty string")
        if src.get("sep") is not None and not (isinstance(src["sep"], str) and src["sep"]):
            raise ConfigError(f"'{here}.sep' must be a column separator such as ',' or '\\t', got {src['sep']!r}")
        check_int(src.get("repeat", 1), f"{here}.repeat", 1, integral_floats=False, maximum=MAX_REPEAT)
        check_bool(src, "allow_absolute", f"{here}.allow_absolute")
        if src["type"] == "demo":
            split = check_int(src.get("split_index", 1), f"{here}.split_index", 1, integral_floats=False)
            if split > NUM_SPLITS:
                raise ConfigError(f"'{here}.split_index' is {split}, but the demo dataset has splits 1 to "
                                  f"{NUM_SPLITS}")
            if src.get("phase", "train") not in ("train", "val", "test"):
                raise ConfigError(f"'{here}.phase' must be train, val or test, got {src['phase']!r}")


def check_transform(aug: Dict[str, Any], where: str) -> None:
    """open_clip's training augmentation (``AugmentationCfg``). Its own transform uses ``scale``,
    ``gray_scale_prob`` and ``color_jitter`` with ``color_jitter_prob``; ``use_timm: true`` hands
    ``scale``, ``ratio``, ``color_jitter``, ``re_prob`` and ``re_count`` to timm instead. A key the chosen
    path ignores is refused, not dropped with a warning."""
    if "scale" in aug:
        check_floats(aug["scale"], f"{where}.scale", 2, 0, 1, min_open=True, ordered=True, text_ok=False,
                     example="[0.9, 1.0] (the fraction of the image area a crop covers)")
    check_bool(aug, "use_timm", f"{where}.use_timm")
    timm = aug.get("use_timm", False)
    only = {False: ("ratio", "re_prob", "re_count"), True: ("color_jitter_prob", "gray_scale_prob")}[timm]
    for key in only:
        if aug.get(key) is not None:
            raise ConfigError(f"'{where}.{key}' only applies with '{where}.use_timm: "
                              f"{str(not timm).lower()}' (open_clip ignores it otherwise); remove it or set that")
    if timm and importlib.util.find_spec("timm") is None:
        raise ConfigError(f"'{where}.use_timm: true' needs the timm package: pip install timm")
    if aug.get("ratio") is not None:
        check_floats(aug["ratio"], f"{where}.ratio", 2, 0, MAX_RATIO, min_open=True, ordered=True, text_ok=False,
                     example="[0.75, 1.333] (crop width / height)")
    for key in ("re_prob", "color_jitter_prob", "gray_scale_prob"):
        if aug.get(key) is not None:
            check_float(aug[key], f"{where}.{key}", 0, 1, hint="a probability", text_ok=False)
    if aug.get("re_count") is not None:
        check_int(aug["re_count"], f"{where}.re_count", 1, integral_floats=False, maximum=MAX_ERASE_COUNT)
    jitter = aug.get("color_jitter")
    if jitter is not None:
        _check_color_jitter(jitter, f"{where}.color_jitter", four=not timm)
    if not timm and (aug.get("color_jitter_prob") or 0) > 0 and jitter is None:
        raise ConfigError(f"'{where}.color_jitter_prob' needs '{where}.color_jitter': [brightness, contrast, "
                          "saturation, hue], e.g. [0.4, 0.4, 0.4, 0.1]")
    if not timm and jitter is not None and not aug.get("color_jitter_prob"):
        raise ConfigError(f"'{where}.color_jitter' needs '{where}.color_jitter_prob' > 0 (how often it is "
                          "applied), or 'use_timm: true'")


def _check_color_jitter(value: Any, where: str, four: bool) -> None:
    """[brightness, contrast, saturation(, hue)] strengths; timm also takes one number for all three."""
    example = "[0.4, 0.4, 0.4, 0.1]"
    if not four and not isinstance(value, (list, tuple)):
        check_float(value, where, 0, MAX_COLOR_JITTER, text_ok=False,
                    hint="one strength, or [brightness, contrast, saturation(, hue)]")
        return
    lengths = (4,) if four else (3, 4)
    if not isinstance(value, (list, tuple)) or len(value) not in lengths:
        raise ConfigError(f"'{where}' must be a list of {' or '.join(map(str, lengths))} numbers "
                          f"[brightness, contrast, saturation, hue], e.g. {example}, got {value!r}")
    for i, v in enumerate(value):
        check_float(v, f"{where}[{i}]", 0, MAX_HUE if i == 3 else MAX_COLOR_JITTER, text_ok=False)


def _check_train(train: Dict[str, Any]) -> None:
    batch = check_int(train["batch_size"], "train.batch_size", 1, integral_floats=False, maximum=MAX_BATCH)
    accum = check_int(train.get("accum_steps", 1), "train.accum_steps", 1, integral_floats=False,
                      maximum=MAX_BATCH)
    if accum > batch:
        raise ConfigError(f"'train.accum_steps' is {accum}, more micro-batches than the {batch} images of "
                          f"'train.batch_size'; use at most {batch}")
    if (train.get("total_steps") is None) == (train.get("epochs") is None):
        raise ConfigError("Set exactly one of 'train.total_steps' and 'train.epochs' (how long to train)")
    for key in ("total_steps", "epochs"):
        if train.get(key) is not None:
            check_int(train[key], f"train.{key}", 1, integral_floats=False)
    check_int(train.get("warmup_steps", DEFAULTS["warmup_steps"]), "train.warmup_steps", 0, integral_floats=False)
    lr = check_float(train["lr"], "train.lr", 0, MAX_LR, min_open=True, hint="the peak learning rate, e.g. 1e-5")
    min_lr = check_float(train.get("min_lr", DEFAULTS["min_lr"]), "train.min_lr", 0, MAX_LR,
                         hint="the learning rate the cosine schedule ends at")
    if min_lr > lr:
        raise ConfigError(f"'train.min_lr' is {train['min_lr']!r}, above 'train.lr' ({train['lr']!r}): the "
                          "cosine schedule decays from lr down to min_lr")
    check_float(train.get("eps", DEFAULTS["eps"]), "train.eps", 0, MAX_EPS, min_open=True,
                hint="AdamW's denominator term, e.g. 1e-6")
    check_float(train.get("weight_decay", DEFAULTS["weight_decay"]), "train.weight_decay", 0, MAX_WEIGHT_DECAY,
                hint="AdamW's decoupled weight decay, e.g. 0.2")
    check_floats(train.get("betas", list(DEFAULTS["betas"])), "train.betas", 2, 0, 1, max_open=True,
                 example="[0.9, 0.98] (AdamW's moment decay rates)")
    if train.get("grad_clip_norm") is not None:  # null: no clipping
        check_float(train["grad_clip_norm"], "train.grad_clip_norm", 0, min_open=True,
                    hint="the largest global gradient norm; null for no clipping")
    for key in ("local_loss", "gather_with_grad"):
        check_bool(train, key, f"train.{key}")


def _check_eval(ev: Dict[str, Any]) -> None:
    if ev.get("eval_freq") is not None:  # null or 0: evaluate at the end only
        check_int(ev["eval_freq"], "eval.eval_freq", 0, integral_floats=False)
    check_bool(ev, "eval_at_start", "eval.eval_at_start")
    if ev.get("iqa") is not None:
        if not isinstance(ev["iqa"], dict):
            raise ConfigError("'eval.iqa' must map a name to a pyiqa dataset section "
                              "(type, dataroot_target, meta_info_file, ...)")
        for name, section in ev["iqa"].items():
            if not isinstance(section, dict):
                raise ConfigError(f"'eval.iqa.{name}' must be a pyiqa dataset section, got {section!r}")
            loader_options(section, f"eval.iqa.{name}")  # the evaluator's loader reads them
    if "prompts" in ev:
        prompts = ev["prompts"]
        if not isinstance(prompts, list) or not prompts:
            raise ConfigError(f"'eval.prompts' must be a non-empty list of prompt groups from "
                              f"{sorted(PROMPT_GROUPS)}, e.g. [quality], got {prompts!r}")
        for group in prompts:
            if not isinstance(group, str) or group not in PROMPT_GROUPS:
                raise ConfigError(f"Unknown prompt group {group!r} in 'eval.prompts'."
                                  f"{closest(str(group), PROMPT_GROUPS)} Valid groups: {sorted(PROMPT_GROUPS)}")
    if "test_crop" in ev and ev["test_crop"] not in TEST_CROPS:
        raise ConfigError(f"'eval.test_crop' must be one of {list(TEST_CROPS)}, got {ev['test_crop']!r}."
                          f"{closest(str(ev['test_crop']), TEST_CROPS)}")
    if "num_crops" in ev:
        check_int(ev["num_crops"], "eval.num_crops", 1, integral_floats=False, maximum=MAX_CROPS)
    if "batch_size" in ev:
        check_int(ev["batch_size"], "eval.batch_size", 1, integral_floats=False, maximum=MAX_BATCH)
    if ev.get("retrieval") is not None:
        ret = check_section(ev["retrieval"], RETRIEVAL, "eval.retrieval")
        if not isinstance(ret["sources"], list) or not ret["sources"]:
            raise ConfigError("'eval.retrieval.sources' must be a non-empty list of sources, e.g. "
                              "[{type: json, path: heldout.json}]")
        check_sources(ret["sources"], "eval.retrieval.sources")
        for key in ("max_pairs", "batch_size"):
            if key in ret:
                check_int(ret[key], f"eval.retrieval.{key}", 1, integral_floats=False,
                          **({"maximum": MAX_BATCH} if key == "batch_size" else {}))


def _check_export(export: Dict[str, Any]) -> None:
    filename = export.get("filename", "uniqa_backbone.pt")
    if not (isinstance(filename, str) and Path(filename).name == filename and filename.endswith((".pt", ".pth"))
            and not filename.startswith(".")):
        raise ConfigError(f"'export.filename' must be a plain file name ending in .pt or .pth, written in the "
                          f"experiment folder (no folders, so it cannot replace a training state or another "
                          f"file), got {filename!r}")
    if export.get("dtype", "fp32") not in EXPORT_DTYPES:
        raise ConfigError(f"'export.dtype' must be one of {list(EXPORT_DTYPES)}, got {export['dtype']!r}")
    check_bool(export, "verify", "export.verify")


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
