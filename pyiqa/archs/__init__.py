"""Networks. Importing this package registers every architecture in ARCH_REGISTRY (explicit imports,
no folder scanning)."""
from typing import Any, Dict

import torch.nn as nn

from ..utils.registry import ARCH_REGISTRY
from . import uniqa_arch  # noqa: F401  (registers UniQA and the release's class names)
from .clip_backbone import build_clip, load_clip_state_dict, save_random_backbone
from .uniqa_arch import PROMPT_GROUPS, VARIANTS, UniQA

__all__ = ["ARCH_REGISTRY", "PROMPT_GROUPS", "VARIANTS", "UniQA", "build_clip", "build_network",
           "load_clip_state_dict", "save_random_backbone"]


def build_network(opt: Dict[str, Any], where: str = "network", **runtime: Any) -> nn.Module:
    """Build the network of ``opt`` (``{'type': name, **options}``); ``where`` names it in errors.

    ``runtime``: constructor arguments that are not part of the saved options (e.g. ``backbone_dtype``).
    """
    return ARCH_REGISTRY.build(opt, where, **runtime)
