"""Losses on predicted quality scores (UniQA outputs one score per image), selected by ``type:`` in
the YAML.

Every loss takes ``forward(pred, target)`` and returns a scalar already multiplied by ``loss_weight``,
so the training model can simply sum the losses it was given. A loss that needs several samples per
batch declares ``min_batch_size`` (default 1), which the options check against the train batch size.
Input checks look only at shapes (never at values) so that they cost no device synchronisation inside
the training loop.
"""
from __future__ import annotations

import math
from typing import Tuple

import torch
from torch import Tensor, nn

from ..utils.errors import ConfigError
from ..utils.registry import LOSS_REGISTRY, closest

_REDUCTIONS = ("mean", "sum")


def _check_loss_weight(loss_weight: float, cls: str) -> float:
    """Reject non-numbers early: a YAML string such as '1e-1' would otherwise fail mid-training."""
    if isinstance(loss_weight, bool) or not isinstance(loss_weight, (int, float)) \
            or not math.isfinite(loss_weight):
        raise ConfigError(f"{cls}: 'loss_weight' must be a finite number, got {loss_weight!r}")
    return float(loss_weight)


def _check_reduction(reduction: str, cls: str) -> str:
    if reduction not in _REDUCTIONS:
        raise ConfigError(
            f"{cls}: 'reduction' must be one of {list(_REDUCTIONS)}, got {reduction!r}."
            f"{closest(str(reduction), _REDUCTIONS)}")
    return reduction


def _flatten_scores(pred: Tensor, target: Tensor, cls: str) -> Tuple[Tensor, Tensor]:
    """Flatten (N, 1) / (N,) scores to (N,) and put ``target`` on ``pred``'s device and dtype.

    Models emit (N, 1) while datasets give (N,); flattening both avoids the silent (N, N) broadcast
    that ``(N, 1) - (N,)`` would produce.
    """
    if pred.numel() != target.numel():
        raise ValueError(
            f"{cls}: pred and target must have the same number of elements, got pred shape "
            f"{tuple(pred.shape)} and target shape {tuple(target.shape)}")
    if pred.numel() == 0:
        raise ValueError(f"{cls}: got an empty batch (pred shape {tuple(pred.shape)})")
    return pred.reshape(-1), target.reshape(-1).to(pred)


class _PointwiseLoss(nn.Module):
    """Mean (or sum) of a per-sample error between predicted and ground-truth scores.

    Args:
        loss_weight: Factor applied to the result, for mixing several losses.
        reduction: 'mean' or 'sum' over the batch.
    """

    def __init__(self, loss_weight: float = 1.0, reduction: str = "mean"):
        super().__init__()
        self.loss_weight = _check_loss_weight(loss_weight, type(self).__name__)
        self.reduction = _check_reduction(reduction, type(self).__name__)

    @staticmethod
    def error(diff: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """pred: (N, 1) or (N,); target: N elements. Returns a scalar."""
        pred, target = _flatten_scores(pred, target, type(self).__name__)
        err = self.error(pred - target)
        return self.loss_weight * (err.mean() if self.reduction == "mean" else err.sum())


@LOSS_REGISTRY.register()
class MSELoss(_PointwiseLoss):
    """Mean squared error between predicted and ground-truth scores (e.g. MOS regression)."""

    @staticmethod
    def error(diff: Tensor) -> Tensor:
        return diff.pow(2)


@LOSS_REGISTRY.register()
class L1Loss(_PointwiseLoss):
    """Mean absolute error between predicted and ground-truth scores; less sensitive to outliers."""

    @staticmethod
    def error(diff: Tensor) -> Tensor:
        return diff.abs()


@LOSS_REGISTRY.register()
class PLCCLoss(nn.Module):
    """``1 - PLCC`` of predictions against targets within the batch (range [0, 2]).

    Trains for linear agreement with the ground truth regardless of its scale and offset, which is
    what the evaluation's PLCC rewards. The correlation is a property of the whole batch, so the
    batch size must be at least 2 (a ValueError is raised otherwise); larger batches give a less
    noisy estimate.

    Numerical safety: both inputs are centred and the product of their norms is clamped from below by
    ``eps``, so a batch with constant predictions or targets gives a finite loss (1) and finite
    gradients instead of NaN. Computed in float32 at least, so fp16 autocast does not overflow the
    sums of squares.

    Args:
        loss_weight: Factor applied to the result, for mixing several losses.
    """

    eps = 1e-8
    min_batch_size = 2  # read by option validation, so a batch of 1 is refused before training starts

    def __init__(self, loss_weight: float = 1.0):
        super().__init__()
        self.loss_weight = _check_loss_weight(loss_weight, type(self).__name__)

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:
        """pred: (N, 1) or (N,) with N >= 2; target: N elements. Returns a scalar."""
        name = type(self).__name__
        pred, target = _flatten_scores(pred, target, name)
        if pred.numel() < 2:
            raise ValueError(
                f"{name} needs a batch of at least 2 samples to compute a correlation, got pred "
                f"shape {tuple(pred.shape)}; increase the batch size or use another loss")
        dtype = torch.promote_types(pred.dtype, torch.float32)
        p = pred.to(dtype)
        t = target.to(dtype)
        p = p - p.mean()
        t = t - t.mean()
        denom = (torch.linalg.vector_norm(p) * torch.linalg.vector_norm(t)).clamp_min(self.eps)
        plcc = (p * t).sum() / denom
        return self.loss_weight * (1.0 - plcc)
