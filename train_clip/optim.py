"""AdamW with CLIP's decay rules, and the cosine learning-rate schedule with linear warm-up.

Defaults are the release's (betas (0.9, 0.98), eps 1e-6, weight decay 0.2). The schedule is a pure
function of the step, so a resumed run needs no scheduler state to continue exactly.
"""
from __future__ import annotations

import math
from typing import Any, Dict, List

import torch

from pyiqa.models.optim import warmup_factor

DEFAULTS = {"betas": (0.9, 0.98), "eps": 1e-6, "weight_decay": 0.2, "warmup_steps": 0, "min_lr": 0.0}


def no_decay(name: str, param: torch.Tensor) -> bool:
    """Excluded from weight decay: norms, biases, embeddings (token, positional, class) and the
    temperature. Decaying them pulls them towards zero for no regularisation benefit."""
    return param.ndim < 2 or "embedding" in name or name.endswith("bias") or "logit_scale" in name


def param_groups(model: torch.nn.Module, weight_decay: float) -> List[Dict[str, Any]]:
    """Two AdamW groups over the trainable parameters: weight matrices decay, the rest do not."""
    decay, rest = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (rest if no_decay(name, p) else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def build_optimizer(model: torch.nn.Module, train_opt: Dict[str, Any]) -> torch.optim.AdamW:
    betas = tuple(float(b) for b in train_opt.get("betas", DEFAULTS["betas"]))
    wd = float(train_opt.get("weight_decay", DEFAULTS["weight_decay"]))
    return torch.optim.AdamW(param_groups(model, wd), lr=float(train_opt["lr"]), betas=betas,
                             eps=float(train_opt.get("eps", DEFAULTS["eps"])))


def lr_at(step: int, base_lr: float, total_steps: int, warmup_steps: int = 0, min_lr: float = 0.0) -> float:
    """Learning rate of optimiser step ``step`` (1-based): the linear warm-up both trainers share
    (:func:`pyiqa.models.optim.warmup_factor`), then cosine to ``min_lr``."""
    if warmup_steps > 0 and step <= warmup_steps:
        return base_lr * warmup_factor(step, warmup_steps)
    span = max(total_steps - warmup_steps, 1)
    progress = min(max(step - warmup_steps, 0) / span, 1.0)
    return min_lr + 0.5 * (base_lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr
