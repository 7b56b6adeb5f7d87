"""Optimisers and LR schedules from ``train.optim`` / ``train.scheduler``, with linear warm-up.

Warm-up multiplies the scheduled learning rate by ``iter / warmup_iter`` for the first iterations; the
scheduler itself never sees the warmed-up value, so closed-form and recursive schedules stay exact.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, Optional

import torch

from ..utils.errors import ConfigError
from ..utils.registry import check_kwargs, closest

OPTIMIZERS = {"Adam": torch.optim.Adam, "AdamW": torch.optim.AdamW, "SGD": torch.optim.SGD}
SCHEDULERS = {"CosineAnnealingLR": torch.optim.lr_scheduler.CosineAnnealingLR,
              "MultiStepLR": torch.optim.lr_scheduler.MultiStepLR}


def _pick(table: Dict[str, Any], opt: Dict[str, Any], where: str):
    if not isinstance(opt, dict) or "type" not in opt:
        raise ConfigError(f"'{where}' must be a mapping with a 'type' key, got {opt!r}")
    name = opt["type"]
    if name not in table:
        raise ConfigError(f"Unknown '{where}.type' '{name}'.{closest(name, table)} Known: {sorted(table)}")
    kwargs = {k: v for k, v in opt.items() if k != "type"}
    for reserved in ("params", "optimizer"):
        if reserved in kwargs:
            raise ConfigError(f"'{where}.{reserved}' is set by the trainer, remove it from the YAML")
    check_kwargs(table[name], kwargs, where)
    return table[name], kwargs


def build_optimizer(params: Iterable[torch.nn.Parameter], opt: Dict[str, Any],
                    where: str = "train.optim") -> torch.optim.Optimizer:
    cls, kwargs = _pick(OPTIMIZERS, opt, where)
    for key in ("lr", "weight_decay", "momentum", "eps"):
        if key in kwargs:
            try:
                kwargs[key] = float(kwargs[key])
            except (TypeError, ValueError) as e:
                raise ConfigError(f"'{where}.{key}' must be a number, got {kwargs[key]!r}") from e
    return cls(list(params), **kwargs)


def build_scheduler(optimizer: torch.optim.Optimizer, opt: Optional[Dict[str, Any]],
                    where: str = "train.scheduler") -> torch.optim.lr_scheduler.LRScheduler:
    """The configured schedule, or a constant one when ``opt`` is empty."""
    if not opt:
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    cls, kwargs = _pick(SCHEDULERS, opt, where)
    return cls(optimizer, **kwargs)


def warmup_factor(current_iter: int, warmup_iter: Optional[int]) -> float:
    """Linear ramp 1/warmup .. 1 over the first ``warmup_iter`` iterations (``-1``/``None``: none)."""
    if not warmup_iter or warmup_iter <= 0 or current_iter >= warmup_iter:
        return 1.0
    return max(current_iter, 1) / warmup_iter
