"""Loading the frozen CLIP ViT that UniQA scores with.

open_clip builds the network; this module only turns the files users actually have (the released
``UniQA_weight.pt``, OpenAI CLIP state dicts, training checkpoints wrapping them) into an
``open_clip.model.CLIP`` with QuickGELU (float32, or its image tower in the dtype asked for), and
resizes the positional embedding on its 2-D grid when the input size differs from the trained one.
Nothing is ever downloaded. Files are read with ``torch.load(weights_only=True)`` and mapped, not read
whole: only the tensors the model keeps are read, and converted in bounded passes. A scoring-only
build (``encode_prompts``) loads, uses and frees the text tower before it loads the image tower.
"""
from __future__ import annotations

import logging
import zipfile
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple, Union

import torch
from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg, resize_pos_embed

from ..utils.checkpoint import TorchScriptArchiveError, load_checkpoint
from ..utils.errors import CheckpointError, ConfigError

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]

# Architecture of OpenAI CLIP ViT-B/16, the backbone of UniQA (149,620,737 parameters).
VIT_B_16_CONFIG: Dict[str, int] = dict(
    embed_dim=512, vision_width=768, vision_layers=12, patch_size=16, image_size=224,
    text_width=512, text_layers=12, context_length=77, vocab_size=49408)
# Same structure, a few hundred times cheaper: for tests and smoke runs on CPU.
TINY_CONFIG: Dict[str, int] = dict(
    embed_dim=64, vision_width=64, vision_layers=2, patch_size=16, image_size=224,
    text_width=64, text_layers=2, context_length=77, vocab_size=49408)
RANDOM_CONFIGS = {"vit-b-16": VIT_B_16_CONFIG, "tiny": TINY_CONFIG}
RANDOM_BACKBONES = {"random": "vit-b-16", "random-tiny": "tiny"}

RANDOM_BACKBONE_WARNING = (
    "!!! UniQA is running on a RANDOMLY INITIALISED CLIP backbone ('%s'). Random weights are NOT a "
    "quality model: the scores it produces are NOT image quality. Use this only for tests and smoke "
    "runs; pass the path of UniQA_weight.pt as `backbone` for real scores. !!!")

# Keys every OpenAI-format ViT CLIP state dict has; named in errors when a file lacks them.
REQUIRED_KEYS = ("visual.conv1.weight", "visual.class_embedding", "visual.positional_embedding",
                 "visual.proj", "token_embedding.weight", "positional_embedding", "ln_final.weight",
                 "text_projection", "logit_scale")
# Integer metadata that OpenAI's files carry next to the tensors, and the text causal mask that
# TorchScript archives store as a buffer: not weights, open_clip rebuilds them.
META_KEYS = ("input_resolution", "context_length", "vocab_size", "attn_mask")
WRAPPER_KEYS = ("model_state_dict", "state_dict")
# OpenAI CLIP's head width: heads = width // 64 in both towers.
HEAD_WIDTH = 64


# Stored bytes converted per pass when adopting a mapped file's tensors (see _adopt_tensors).
PASS_BYTES = 32 * 2 ** 20
# Read only row by row (the prompts' tokens), so adopted as stored: never read whole, never converted.
TOKEN_TABLE = "token_embedding.weight"


def _read_file(path: Path, mmap: bool = False) -> Tuple[object, bool]:
    """(contents of ``path``, whether its tensors are file-backed).

    Read with :func:`load_checkpoint` (weights_only=True: a file holding pickled Python objects is
    refused, never unpickled); ``mmap`` maps the file so tensors are read only when used. OpenAI's
    original ViT-B-16.pt is a TorchScript archive: only then ``torch.jit.load`` reads it, whole.
    """
    try:
        obj = load_checkpoint(path, "CLIP checkpoint", mmap=mmap)
        return obj, mmap and zipfile.is_zipfile(path)  # load_checkpoint reads legacy files unmapped
    except TorchScriptArchiveError:
        pass
    try:
        return torch.jit.load(str(path), map_location="cpu").state_dict(), False
    except Exception as err:  # TorchScript raises RuntimeError and others on damaged archives
        raise CheckpointError(f"Cannot read TorchScript CLIP archive '{path}': {err}") from err


def _unwrap(obj: object, path: Path) -> Dict[str, object]:
    """Find the CLIP state dict inside a bare dict or a training checkpoint and drop key prefixes."""
    if not isinstance(obj, dict):
        raise CheckpointError(f"CLIP checkpoint '{path}' holds a {type(obj).__name__}, expected a "
                              "state dict (a mapping of parameter names to tensors).")
    for key in WRAPPER_KEYS:
        if key in obj and isinstance(obj[key], dict):
            obj = obj[key]
            break
    sd = {}
    for key, value in obj.items():
        key = str(key)
        while key.startswith("module."):  # DDP-trained files
            key = key[len("module."):]
        sd[key] = value
    if "text.text_projection" in sd and "text_projection" not in sd:
        # open_clip's CustomTextCLIP layout keeps the text tower under 'text.'
        sd = {k[len("text."):] if k.startswith("text.") else k: v for k, v in sd.items()}
    return sd


def load_clip_state_dict(path: PathLike, mmap: bool = False) -> Dict[str, torch.Tensor]:
    """Read an OpenAI-format ViT CLIP state dict (e.g. UniQA_weight.pt) from ``path``.

    Accepts a bare state dict or one wrapped in ``model_state_dict`` / ``state_dict``, keys with or
    without ``module.`` prefixes, fp16 or fp32 tensors. Integer metadata entries are dropped; tensors
    keep their stored dtype (``build_clip`` converts them). ``mmap``: the tensors are file-backed and
    read only when used (see :func:`load_checkpoint`).

    Raises:
        CheckpointError: the file is missing, unreadable, refused (pickled objects), or not a ViT CLIP
            state dict.
    """
    return _read_state_dict(Path(path), mmap)[0]


def _read_state_dict(path: Path, mmap: bool) -> Tuple[Dict[str, torch.Tensor], bool]:
    """(checked state dict, whether its tensors are file-backed)."""
    if not path.is_file():
        raise CheckpointError(f"No CLIP checkpoint file exists at '{path}'.")
    obj, mapped = _read_file(path, mmap)
    sd = _unwrap(obj, path)
    for key in META_KEYS:
        sd.pop(key, None)
    if any(k.startswith("visual.layer1") for k in sd):
        raise CheckpointError(f"'{path}' is a ResNet CLIP ('visual.layer1...' keys): ResNet CLIPs are "
                              "not supported, only ViT CLIPs (UniQA uses ViT-B/16).")
    missing = [k for k in REQUIRED_KEYS if k not in sd]
    if missing:
        sample = ", ".join(list(sd)[:5]) or "none"
        raise CheckpointError(
            f"'{path}' is not an OpenAI-format ViT CLIP state dict: missing required keys {missing} "
            f"(first keys found: {sample}).")
    bad = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"'{path}' has non-tensor entries {bad[:5]} in its CLIP state dict.")
    return sd, mapped


def config_from_state_dict(sd: Dict[str, torch.Tensor]) -> Dict[str, int]:
    """Read the architecture (same keys as VIT_B_16_CONFIG) off the tensor shapes of a state dict."""
    patch = sd["visual.conv1.weight"].shape[-1]
    grid = round((sd["visual.positional_embedding"].shape[0] - 1) ** 0.5)
    return dict(
        embed_dim=sd["text_projection"].shape[1],
        vision_width=sd["visual.conv1.weight"].shape[0],
        vision_layers=sum(1 for k in sd if k.startswith("visual.transformer.resblocks.")
                          and k.endswith(".attn.in_proj_weight")),
        patch_size=patch,
        image_size=patch * grid,
        text_width=sd["ln_final.weight"].shape[0],
        text_layers=sum(1 for k in sd if k.startswith("transformer.resblocks.")
                        and k.endswith(".attn.in_proj_weight")),
        context_length=sd["positional_embedding"].shape[0],
        vocab_size=sd["token_embedding.weight"].shape[0],
    )


def _make_clip(cfg: Dict[str, int], image_size: int) -> CLIP:
    """An open_clip CLIP in OpenAI's layout (QuickGELU, float32) built at ``image_size``."""
    if image_size % cfg["patch_size"]:
        raise ConfigError(f"sample_size {image_size} must be a multiple of the CLIP patch size "
                          f"{cfg['patch_size']}.")
    vision = CLIPVisionCfg(layers=cfg["vision_layers"], width=cfg["vision_width"],
                           head_width=HEAD_WIDTH, patch_size=cfg["patch_size"], image_size=image_size)
    text = CLIPTextCfg(context_length=cfg["context_length"], vocab_size=cfg["vocab_size"],
                       width=cfg["text_width"], heads=max(1, cfg["text_width"] // HEAD_WIDTH),
                       layers=cfg["text_layers"])
    return CLIP(cfg["embed_dim"], vision_cfg=vision, text_cfg=text, quick_gelu=True)


def _random_clip(name: str, image_size: int, seed: int,
                 tiny_config: Optional[Dict[str, int]] = None) -> CLIP:
    """A randomly initialised CLIP; seeded without touching the global RNG."""
    cfg = dict(RANDOM_CONFIGS[name])
    if name == "tiny" and tiny_config:
        cfg.update(tiny_config)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _make_clip(cfg, image_size)


def _causal_mask(n: int) -> torch.Tensor:
    """The text tower's additive causal mask (-inf above the diagonal), as open_clip builds it."""
    return torch.full((n, n), float("-inf")).triu_(1)


def _load_without_init(cfg: Dict[str, int], image_size: int, sd: Dict[str, torch.Tensor], mapped: bool,
                       visual_dtype: torch.dtype, path: Path,
                       encode_prompts: Optional[Callable[[CLIP], None]] = None) -> CLIP:
    """Build the CLIP skeleton on the meta device and adopt the checkpoint's tensors as its weights.

    Skips the random initialisation of ~150M parameters (seconds on a CPU), and peak memory is about
    the final model: see :func:`_adopt_tensors`. With ``encode_prompts`` (see :func:`build_clip`) the
    text tower is loaded, used and freed before the image tower is loaded: the peak is then about the
    larger of the two towers, not both.
    """
    with torch.device("meta"):
        model = _make_clip(cfg, image_size)
    if image_size != cfg["image_size"]:
        logger.info("Resizing the CLIP positional embedding grid of '%s' from %d px to %d px",
                    path, cfg["image_size"], image_size)
    if encode_prompts is None:
        _assign(model, _adopt_tensors(sd, mapped, path, visual_dtype, model, list(sd)), path)
    else:
        text_keys = [k for k in sd if not k.startswith("visual.")]  # logit_scale too: the head keeps it
        _assign(model, _adopt_tensors(sd, mapped, path, visual_dtype, model, text_keys), path,
                check_visual=False)
        encode_prompts(model.eval())
        drop_text_tower(model)
        if mapped:  # the text passes dropped their mappings: map the file afresh for the image tower
            sd, _ = _read_state_dict(path, mmap=True)
        visual_keys = [k for k in sd if k.startswith("visual.")]
        _assign(model, _adopt_tensors(sd, mapped, path, visual_dtype, model, visual_keys), path)
    return model


def _assign(model: CLIP, weights: Dict[str, torch.Tensor], path: Path, check_visual: bool = True) -> None:
    """Make ``weights`` (emptied: the model holds them now) tensors of ``model``; every tensor they
    should fill must be filled (the image tower's only with ``check_visual``)."""
    try:
        result = model.load_state_dict(weights, strict=False, assign=True)
    except RuntimeError as err:
        raise CheckpointError(f"CLIP state dict '{path}' does not fit the architecture read from its "
                              f"own shapes: {err}") from err
    weights.clear()
    if result.unexpected_keys:
        raise CheckpointError(f"CLIP state dict '{path}' does not fit the architecture read from its "
                              f"own shapes: unexpected keys {result.unexpected_keys[:10]}")
    if model.attn_mask is not None and model.attn_mask.is_meta:
        model.attn_mask = _causal_mask(model.context_length)  # non-persistent buffer, not in the file
    left = [name for name, t in list(model.named_parameters()) + list(model.named_buffers())
            if t.is_meta and (check_visual or not name.startswith("visual."))]
    if left:  # a file without them, or an open_clip version with more non-persistent buffers
        raise CheckpointError(f"CLIP tensors {left[:10]} of '{path}' were not initialised by the state dict")


def drop_text_tower(model: CLIP) -> None:
    """Free the text tower of ``model`` (~38M parameters, plus the token table); ``encode_text`` is then
    unavailable. ``logit_scale`` is kept."""
    for name in ("transformer", "token_embedding", "ln_final"):
        setattr(model, name, None)  # registered submodules may be set to None
    for name in ("positional_embedding", "text_projection", "attn_mask"):
        setattr(model, name, None)


def _adopt_tensors(sd: Dict[str, torch.Tensor], mapped: bool, path: Path, visual_dtype: torch.dtype,
                   model: CLIP, keys: List[str]) -> Dict[str, torch.Tensor]:
    """The weights ``keys`` of the model converted from the file's: image tower in ``visual_dtype``, the
    rest float32. They are popped from ``sd``; a mapped ``sd`` is emptied.

    Memory stays about the converted weights (what the model keeps) plus one slice of the file:

    * a mapped file (``mapped``: the usual zip format) is converted in passes of ``PASS_BYTES`` stored
      bytes, each from a fresh mapping that is dropped (``sd.clear()``) before the next: pages of a
      mapped file count towards the process's memory until their mapping goes, so the pages read so far
      never pile up;
    * an unmapped ``sd`` (TorchScript or legacy files) is converted in place, dropping each stored
      tensor as its copy is made;
    * the token table (vocab x width, ~25M parameters in ViT-B/16) is kept as stored: encoding the
      prompts reads only their tokens' rows, and ``encode_text`` casts those rows to float32, exactly
      as converting the whole table first would.
    """
    out: Dict[str, torch.Tensor] = {}
    passes = _passes(sd, keys) if mapped else [keys]
    for n, group in enumerate(passes):
        if n:
            sd.clear()  # the caller's dict too: its tensors hold the previous mapping alive
            sd, _ = _read_state_dict(path, mmap=True)
        for key in group:
            if key not in sd:
                raise CheckpointError(f"CLIP checkpoint '{path}' changed while it was being read "
                                      f"('{key}' is gone); load it again once it is written.")
            value = sd.pop(key)
            if key == "visual.positional_embedding":
                resized = {key: value.float()}
                resize_pos_embed(resized, model)  # 2-D bicubic on the patch grid; class token row kept
                value = resized[key]
            if key == TOKEN_TABLE:
                out[key] = value
            elif value.is_floating_point():
                dtype = visual_dtype if key.startswith("visual.") else torch.float32
                out[key] = value.to(dtype, copy=True).contiguous()  # a copy: never file-backed
            else:
                out[key] = value.clone()
    if mapped:
        sd.clear()
    return out


def _passes(sd: Dict[str, torch.Tensor], keys: List[str]) -> List[List[str]]:
    """``keys`` of ``sd`` in file order, grouped by about ``PASS_BYTES`` of stored tensor bytes; the
    token table in a pass of its own (it stays file-backed: no other tensor of its mapping may be read)."""
    wanted = set(keys)
    passes: List[List[str]] = [[TOKEN_TABLE]] if TOKEN_TABLE in wanted else []
    group: List[str] = []
    size = 0
    for key, value in sd.items():
        if key == TOKEN_TABLE or key not in wanted:
            continue
        if group and size + value.nbytes > PASS_BYTES:
            passes.append(group)
            group, size = [], 0
        group.append(key)
        size += value.nbytes
    return passes + [group] if group else passes


def build_clip(backbone: PathLike, image_size: int = 224,
               tiny_config: Optional[Dict[str, int]] = None, seed: int = 0,
               visual_dtype: Optional[torch.dtype] = None,
               encode_prompts: Optional[Callable[[CLIP], None]] = None) -> CLIP:
    """Build the frozen-CLIP network of UniQA: float32, QuickGELU, eval mode.

    Args:
        backbone: path of UniQA_weight.pt (or any OpenAI-format ViT CLIP state dict), ``'random'``
            (ViT-B/16 architecture, random weights) or ``'random-tiny'`` (tiny, for tests).
        image_size: input size the model is built for; the positional embedding of a checkpoint
            trained at another size is interpolated on its 2-D grid (class token kept).
        tiny_config: overrides of TINY_CONFIG for ``'random-tiny'``.
        seed: initialisation seed of the random backbones.
        visual_dtype: frozen-backbone loading: the image tower's weights get this dtype (e.g. bf16
            on AMX CPUs; the text tower computes in float32, it only runs to embed the prompts, and
            its token table stays as stored, file-backed: only the prompts' rows are ever read) and
            a checkpoint's tensors are adopted without first initialising random weights (faster,
            peak memory about the final model, and the global RNG is left untouched). ``None``:
            float32 throughout, built the classic way (random init, then load).
        encode_prompts: scoring-only build: called with the CLIP while only its text tower is loaded
            (to embed the prompts); the text tower is freed when it returns, before the image tower
            is loaded, so that peak memory is about the larger tower, not both. The CLIP comes back
            without a text tower (see :func:`drop_text_tower`). Implies the frozen-backbone loading
            (``visual_dtype`` float32 when not given).

    Files are read with ``torch.load(weights_only=True)`` (see :func:`load_checkpoint`): a file that
    holds pickled Python objects is refused, never unpickled.
    """
    name = str(backbone)
    if name in RANDOM_BACKBONES:
        logger.warning(RANDOM_BACKBONE_WARNING, name)
        model = _random_clip(RANDOM_BACKBONES[name], image_size, seed, tiny_config)
        if visual_dtype is not None:
            model.visual.to(visual_dtype)
        if encode_prompts is not None:  # random weights are made whole: only the order of use differs
            encode_prompts(model.eval())
            drop_text_tower(model)
        return model.eval()
    path = Path(name).expanduser()
    if not path.is_file():
        raise CheckpointError(
            f"No file exists at backbone path '{name}'. CLIP weights cannot be downloaded here: pass "
            "the path of UniQA_weight.pt (or of an OpenAI CLIP ViT .pt state dict), or 'random' for "
            "an untrained backbone (tests only).")
    sd, mapped = _read_state_dict(path, mmap=True)  # nothing read yet but the file's index
    cfg = config_from_state_dict(sd)  # shapes only
    if encode_prompts is not None and visual_dtype is None:
        visual_dtype = torch.float32
    if visual_dtype is not None:
        model = _load_without_init(cfg, image_size, sd, mapped, visual_dtype, path, encode_prompts)
        logger.info("Loaded CLIP backbone '%s' (%s), image tower in %s", path, cfg, visual_dtype)
        return model.eval()
    model = _make_clip(cfg, image_size)
    if image_size != cfg["image_size"]:
        logger.info("Resizing the CLIP positional embedding grid of '%s' from %d px to %d px",
                    path, cfg["image_size"], image_size)
        sd["visual.positional_embedding"] = sd["visual.positional_embedding"].float()
        resize_pos_embed(sd, model)  # 2-D bicubic on the patch grid; class token row kept
    try:
        model.load_state_dict(sd, strict=True)  # copies, converting fp16 to the model's float32
    except RuntimeError as err:
        raise CheckpointError(f"CLIP state dict '{path}' does not fit the architecture read from its "
                              f"own shapes: {err}") from err
    sd.clear()
    logger.info("Loaded CLIP backbone '%s' (%s)", path, cfg)
    return model.eval()


def save_random_backbone(path: PathLike, config: str = "tiny", dtype: torch.dtype = torch.float16,
                         seed: int = 0) -> Path:
    """Write a random CLIP in the exact file format of UniQA_weight.pt (OpenAI keys, metadata ints).

    Lets tests and demos exercise the real loading path without the 300 MB download.
    """
    if config not in RANDOM_CONFIGS:
        raise ConfigError(f"Unknown random backbone config '{config}'; valid: {sorted(RANDOM_CONFIGS)}")
    cfg = RANDOM_CONFIGS[config]
    model = _random_clip(config, cfg["image_size"], seed)
    sd: Dict[str, object] = {k: v.to(dtype) for k, v in model.state_dict().items()}
    sd.update(input_resolution=cfg["image_size"], context_length=cfg["context_length"],
              vocab_size=cfg["vocab_size"])
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(sd, path)
    return path
