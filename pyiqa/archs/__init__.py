"""Networks. ``build_network`` and every name below register all architectures in ARCH_REGISTRY first
(explicit imports, no folder scanning).

The package imports nothing heavy by itself (names are resolved on first use, PEP 562), so the
torch-free model-card table ``pyiqa.archs.model_cards`` can be read without importing torch and
open_clip (``pyiqa --list`` answers in a fraction of a second).
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, Dict, List

if TYPE_CHECKING:
    import torch.nn as nn

__all__ = ["ARCH_REGISTRY", "PROMPT_GROUPS", "VARIANTS", "UniQA", "build_clip", "build_network",
           "load_clip_state_dict", "save_random_backbone"]

# name -> module that defines it; uniqa_arch (which registers UniQA) is imported before any of them
_LAZY = {"ARCH_REGISTRY": "pyiqa.utils.registry", "PROMPT_GROUPS": "pyiqa.archs.uniqa_arch",
         "VARIANTS": "pyiqa.archs.uniqa_arch", "UniQA": "pyiqa.archs.uniqa_arch",
         "build_clip": "pyiqa.archs.clip_backbone", "load_clip_state_dict": "pyiqa.archs.clip_backbone",
         "save_random_backbone": "pyiqa.archs.clip_backbone"}


def _register_all() -> None:
    """Import every architecture module, which registers its classes in ARCH_REGISTRY."""
    importlib.import_module("pyiqa.archs.uniqa_arch")  # UniQA and the release's class names


def build_network(opt: Dict[str, Any], where: str = "network", **runtime: Any) -> "nn.Module":
    """Build the network of ``opt`` (``{'type': name, **options}``); ``where`` names it in errors.

    ``runtime``: constructor arguments that are not part of the saved options (e.g. ``backbone_dtype``).
    """
    _register_all()
    from ..utils.registry import ARCH_REGISTRY
    return ARCH_REGISTRY.build(opt, where, **runtime)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        _register_all()
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pyiqa.archs' has no attribute '{name}'")


def __dir__() -> List[str]:
    return sorted(list(globals()) + list(_LAZY))
