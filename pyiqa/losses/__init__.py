"""Training losses, registered in LOSS_REGISTRY so a YAML ``type:`` selects them."""
from __future__ import annotations

from typing import Any, Dict

from torch import nn

from ..utils.registry import LOSS_REGISTRY
from .losses import L1Loss, MSELoss, PLCCLoss  # imported so that they register

__all__ = ["build_loss", "L1Loss", "MSELoss", "PLCCLoss"]


def build_loss(opt: Dict[str, Any], where: str) -> nn.Module:
    """Build the loss described by ``opt`` (``{'type': ..., **kwargs}``) found at config path ``where``.

    Unknown types and options raise ConfigError naming ``where`` and the closest valid name.
    """
    return LOSS_REGISTRY.build(opt, where)
