"""The CLIP being pre-trained: where it starts from, what trains, and a check that it can be exported.

Three starting points (exactly one per YAML):

* ``backbone``: any file ``pyiqa`` loads as a UniQA backbone (OpenAI CLIP ViT-B/16, the released
  UniQA_weight.pt, our own export, DDP/``state_dict`` wrappers) or ``random`` / ``random-tiny``;
* ``model_name`` (+ ``pretrained``: a local checkpoint): an open_clip architecture;
* ``config``: an open_clip model config mapping, or the name of a preset in ``CONFIGS``.

The model is always an ``open_clip.model.CLIP`` with QuickGELU: that is what UniQA scores with, so
the weights mean the same thing after export.
"""
from __future__ import annotations

import copy
import logging
from pathlib import Path
from typing import Any, Dict, Optional

import open_clip
import torch
from open_clip.model import CLIP

from pyiqa.archs.clip_backbone import TINY_CONFIG, build_clip, config_from_state_dict, load_clip_state_dict
from pyiqa.utils.errors import CheckpointError, ConfigError
from pyiqa.utils.registry import closest

logger = logging.getLogger(__name__)


def _openai_style(embed_dim: int, width: int, layers: int, patch: int, image_size: int,
                  text_width: int, text_layers: int) -> Dict[str, Any]:
    """An open_clip model config in OpenAI's layout (head width 64), the only one UniQA loads."""
    return {"embed_dim": embed_dim,
            "vision_cfg": {"image_size": image_size, "layers": layers, "width": width,
                           "patch_size": patch, "head_width": 64},
            "text_cfg": {"context_length": 77, "vocab_size": 49408, "width": text_width,
                         "heads": max(1, text_width // 64), "layers": text_layers}}


# open_clip-style presets. 'tiny' is the core's random-tiny architecture (TINY_CONFIG) so a demo
# backbone pre-trained from it is comparable with the random-backbone demo; 'tiny-64px' is the same
# network at 64 px (16 patches), for tests.
CONFIGS: Dict[str, Dict[str, Any]] = {
    "tiny": _openai_style(TINY_CONFIG["embed_dim"], TINY_CONFIG["vision_width"], TINY_CONFIG["vision_layers"],
                          TINY_CONFIG["patch_size"], TINY_CONFIG["image_size"], TINY_CONFIG["text_width"],
                          TINY_CONFIG["text_layers"]),
    "tiny-64px": _openai_style(64, 64, 2, 16, 64, 64, 2),
    "vit-b-16": _openai_style(512, 768, 12, 16, 224, 512, 12),
}


def build_model(opt: Dict[str, Any], seed: int = 0) -> CLIP:
    """Build the trainable CLIP of the YAML's ``model`` section (float32, train mode, on CPU)."""
    image_size = opt.get("image_size")
    init_seed = int(opt.get("init_seed", seed))
    if opt.get("backbone") is not None:
        model = build_clip(opt["backbone"], image_size=image_size or _file_image_size(opt["backbone"]),
                           seed=init_seed)
    else:
        with torch.random.fork_rng(devices=[]):  # random init must not shift the training RNG
            torch.manual_seed(init_seed)
            model = _build_open_clip(opt, image_size)
    if type(model) is not CLIP:
        raise ConfigError(f"The model is an open_clip {type(model).__name__}; only plain CLIP models (OpenAI "
                          "layout: text tower at the top level) can be exported as a UniQA backbone")
    model.train()
    model.requires_grad_(True)
    lock_blocks(model, int(opt.get("lock_vision_blocks", 0)), int(opt.get("lock_text_blocks", 0)))
    if opt.get("grad_checkpointing"):
        model.set_grad_checkpointing(True)
    return model


def _file_image_size(backbone: str) -> int:
    """The image size a backbone file was trained at (224 for the random presets)."""
    if backbone in ("random", "random-tiny"):
        return 224
    return config_from_state_dict(load_clip_state_dict(backbone))["image_size"]


def _build_open_clip(opt: Dict[str, Any], image_size: Optional[int]) -> CLIP:
    if opt.get("model_name") is not None:
        name, pretrained = opt["model_name"], opt.get("pretrained")
        if pretrained is not None and not Path(pretrained).is_file():
            raise CheckpointError(f"model.pretrained '{pretrained}' is not a file; nothing is downloaded "
                                  "here, give the path of a local checkpoint")
        try:
            return open_clip.create_model(name, pretrained=pretrained, force_quick_gelu=True,
                                          force_image_size=image_size, cache_dir=None)
        except RuntimeError as err:
            if "Model config for" in str(err) or "not found" in str(err):
                known = open_clip.list_models()
                raise ConfigError(f"Unknown open_clip model_name '{name}'.{closest(name, known)} "
                                  f"See open_clip.list_models()") from err
            raise
    cfg = opt["config"]
    if isinstance(cfg, str):
        if cfg not in CONFIGS:
            raise ConfigError(f"Unknown model.config preset '{cfg}'.{closest(cfg, CONFIGS)} "
                              f"Presets: {sorted(CONFIGS)}; or give an open_clip config mapping")
        cfg = CONFIGS[cfg]
    if not isinstance(cfg, dict) or not {"embed_dim", "vision_cfg", "text_cfg"} <= set(cfg):
        raise ConfigError("'model.config' must be an open_clip model config with embed_dim, vision_cfg and "
                          f"text_cfg, got {cfg!r}")
    cfg = copy.deepcopy(cfg)
    if image_size is not None:
        cfg["vision_cfg"]["image_size"] = image_size
    extra = set(cfg) - {"embed_dim", "vision_cfg", "text_cfg", "quick_gelu"}
    if extra:
        raise ConfigError(f"'model.config' keys {sorted(extra)} are not supported for a UniQA backbone")
    try:
        return CLIP(cfg["embed_dim"], vision_cfg=cfg["vision_cfg"], text_cfg=cfg["text_cfg"], quick_gelu=True)
    except TypeError as err:
        raise ConfigError(f"'model.config' is not a valid open_clip config: {err}") from err


def lock_blocks(model: CLIP, vision_blocks: int, text_blocks: int) -> None:
    """Freeze the input side of a tower: its embeddings and its first N residual blocks.

    Training only the later blocks keeps low-level features (and memory for their gradients) fixed;
    N = 0 trains everything.
    """
    towers = (("vision", vision_blocks, model.visual.transformer.resblocks,
               [model.visual.conv1, model.visual.ln_pre], ["class_embedding", "positional_embedding"],
               model.visual),
              ("text", text_blocks, model.transformer.resblocks, [model.token_embedding],
               ["positional_embedding"], model))
    for name, n, blocks, modules, params, owner in towers:
        if n > len(blocks):
            raise ConfigError(f"model.lock_{name}_blocks={n} but the {name} tower has {len(blocks)} blocks")
        if n == 0:
            continue
        for module in list(modules) + list(blocks[:n]):
            module.requires_grad_(False)
        for p in params:
            getattr(owner, p).requires_grad_(False)
        logger.info("Locked the %s tower's embeddings and first %d of %d blocks", name, n, len(blocks))


def count(model: torch.nn.Module) -> str:
    """'N parameters, M trainable' for the log."""
    params = list(model.parameters())
    return (f"{sum(p.numel() for p in params):,} parameters, "
            f"{sum(p.numel() for p in params if p.requires_grad):,} trainable")
