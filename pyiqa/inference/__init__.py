"""Inference for users who never train: ``create_metric(name)`` builds a ready-to-score metric from a
model card (``pyiqa.archs.model_cards.MODEL_CARDS``), finding its weight files locally.

Names are imported on first use (PEP 562): ``list_models`` and the weight-folder lookup need neither
torch nor open_clip, so listing the metrics stays instant; ``create_metric`` imports them.
"""
from __future__ import annotations

import importlib
from typing import Any, List

__all__ = ["DEFAULT_MAX_SIDE", "InferenceMetric", "InputError", "create_metric", "decode_image",
           "get_card", "install_weights", "list_images", "list_models", "weight_dirs"]

_LAZY = {"DEFAULT_MAX_SIDE": "pyiqa.inference.images", "InputError": "pyiqa.inference.images",
         "decode_image": "pyiqa.inference.images", "list_images": "pyiqa.inference.images",
         "InferenceMetric": "pyiqa.inference.metric", "create_metric": "pyiqa.inference.metric",
         "get_card": "pyiqa.inference.metric", "list_models": "pyiqa.archs.model_cards",
         "install_weights": "pyiqa.inference.weights", "weight_dirs": "pyiqa.inference.weight_lookup"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pyiqa.inference' has no attribute '{name}'")


def __dir__() -> List[str]:
    return sorted(list(globals()) + list(_LAZY))
