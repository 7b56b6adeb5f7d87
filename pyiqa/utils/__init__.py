"""Utilities. ``from pyiqa.utils import imread2tensor`` works as in IQA-PyTorch; it is imported on first
use (PEP 562), so the light modules here (errors, options, atomic writes) never pull in torch."""
from __future__ import annotations

import importlib
from typing import Any, List

_LAZY = {"imread2tensor": "pyiqa.utils.img_util", "imread2pil": "pyiqa.utils.img_util"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pyiqa.utils' has no attribute '{name}'")


def __dir__() -> List[str]:
    return sorted(list(globals()) + list(_LAZY))
