"""Agreement between predicted and ground-truth quality scores: SRCC, PLCC, KRCC and RMSE.

These are the numbers IQA papers report. The statistics themselves come from ``scipy.stats``; this
module only normalises inputs (lists, arrays or tensors of any shape), rejects data that would make
the numbers meaningless, and implements the customary 4-parameter logistic mapping applied before
PLCC / RMSE so that a monotonic but nonlinear predictor is not penalised for its scale.

Shared conventions:
    * ``pred`` and ``target`` may have any shapes holding the same number of elements; both are
      flattened. At least 2 elements are required (ValueError otherwise).
    * NaN or inf in either input raises ValueError saying how many were found.
    * A constant input has no defined correlation: the functions log a warning and return
      ``float('nan')`` rather than raising, so one degenerate validation run does not end training.
    * Results are plain Python floats.
"""
from __future__ import annotations

import logging
import warnings
from typing import Any, Tuple

import numpy as np
import torch
from scipy import stats
from scipy.optimize import OptimizeWarning, curve_fit
from scipy.special import expit

from ..utils.errors import ConfigError
from ..utils.registry import METRIC_REGISTRY

logger = logging.getLogger(__name__)

_LOGISTIC_MAXFEV = 10000


def _as_array(x: Any, name: str) -> np.ndarray:
    """Flatten a list, numpy array or torch tensor (any device/dtype) to float64."""
    if torch.is_tensor(x):
        x = x.detach().to("cpu", torch.float64).numpy()
    try:
        return np.asarray(x, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric (list, numpy array or tensor): {exc}") from exc


def _prepare(pred: Any, target: Any, metric: str) -> Tuple[np.ndarray, np.ndarray]:
    """Validate and flatten the two score vectors shared by all metrics."""
    p, t = _as_array(pred, "pred"), _as_array(target, "target")
    if p.size != t.size:
        raise ValueError(
            f"{metric}: pred and target must have the same number of elements, got pred shape "
            f"{tuple(np.shape(pred))} ({p.size} elements) and target shape "
            f"{tuple(np.shape(target))} ({t.size} elements)")
    if p.size < 2:
        raise ValueError(f"{metric}: needs at least 2 samples, got {p.size}")
    bad_p, bad_t = int((~np.isfinite(p)).sum()), int((~np.isfinite(t)).sum())
    if bad_p or bad_t:
        raise ValueError(
            f"{metric}: inputs contain non-finite values (NaN or inf): {bad_p} in pred, "
            f"{bad_t} in target, out of {p.size}; check the model output and the labels")
    return p, t


def _constant(p: np.ndarray, t: np.ndarray, metric: str) -> bool:
    """True (after logging a warning) when either input is constant, i.e. has no correlation."""
    which = [name for name, x in (("pred", p), ("target", t)) if np.ptp(x) == 0]
    if which:
        logger.warning("%s is undefined because %s is constant over %d samples; returning NaN",
                       metric, " and ".join(which), p.size)
    return bool(which)


def _check_flag(value: Any, key: str, metric: str) -> None:
    # A YAML string like 'false' is truthy; insist on a real bool.
    if not isinstance(value, bool):
        raise ConfigError(f"{metric}: '{key}' must be true or false, got {value!r}")


def _logistic4(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """(b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2, written with expit to avoid exp overflow."""
    scale = max(abs(b4), 1e-12)
    return (b1 - b2) * expit((x - b3) / scale) + b2


def _logistic4_jac(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """Analytic Jacobian (len(x), 4) of ``_logistic4``.

    Finite differences use a step relative to the parameter, which vanishes when a starting value is
    ~0 (e.g. ``b3`` = mean of zero-centred scores) and freezes that parameter; derivatives avoid it.
    """
    scale = max(abs(b4), 1e-12)
    z = (x - b3) / scale
    s = expit(z)
    ds = (b1 - b2) * s * (1.0 - s)  # d f / d z
    return np.stack([s, 1.0 - s, -ds / scale, -ds * z / scale * np.sign(b4)], axis=1)


def logistic_fit(p: np.ndarray, t: np.ndarray, metric: str) -> np.ndarray:
    """Map ``p`` onto the scale of ``t`` with a fitted 4-parameter logistic (VQEG practice).

    Returns ``p`` unchanged, with a logged warning, when the fit fails or degenerates, so the caller
    reports the raw-score metric instead.
    """
    if np.ptp(p) == 0 or np.ptp(t) == 0:
        logger.warning("%s: logistic fit skipped because an input is constant; using raw scores",
                       metric)
        return p
    # Start from a curve spanning the targets, centred and scaled on the predictions; a negative
    # relation starts from the mirrored curve so the optimiser does not have to flip it.
    lo, hi = float(t.min()), float(t.max())
    if np.corrcoef(p, t)[0, 1] < 0:
        lo, hi = hi, lo
    beta0 = [hi, lo, float(p.mean()), float(p.std())]
    try:
        with warnings.catch_warnings():
            # Only the fitted curve is used, so an unestimable covariance is irrelevant.
            warnings.simplefilter("ignore", OptimizeWarning)
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                popt, _ = curve_fit(_logistic4, p, t, p0=beta0, jac=_logistic4_jac,
                                    maxfev=_LOGISTIC_MAXFEV)
                fitted = _logistic4(p, *popt)
    except (RuntimeError, ValueError) as exc:
        logger.warning("%s: logistic fit failed (%s); using raw scores", metric, exc)
        return p
    if not np.all(np.isfinite(fitted)) or np.ptp(fitted) == 0:
        logger.warning("%s: logistic fit degenerated to a constant or non-finite curve; "
                       "using raw scores", metric)
        return p
    return fitted


@METRIC_REGISTRY.register(lower_better=False)
def calculate_srcc(pred: Any, target: Any) -> float:
    """Spearman rank correlation: does the model order images like humans do? Range [-1, 1].

    Args:
        pred: Predicted scores, any shape.
        target: Ground-truth scores with the same number of elements.

    Returns:
        SRCC as a float; NaN (with a warning) when an input is constant.
    """
    p, t = _prepare(pred, target, "SRCC")
    if _constant(p, t, "SRCC"):
        return float("nan")
    return float(stats.spearmanr(p, t).statistic)


@METRIC_REGISTRY.register(lower_better=False)
def calculate_plcc(pred: Any, target: Any, fit_logistic: bool = False) -> float:
    """Pearson linear correlation: how linearly do predictions track the ground truth? Range [-1, 1].

    Args:
        pred: Predicted scores, any shape.
        target: Ground-truth scores with the same number of elements.
        fit_logistic: First map ``pred`` through a fitted 4-parameter logistic, as IQA papers do,
            so only the monotonic agreement is measured; falls back to raw scores (with a warning)
            if the fit fails. The fitted curve may be decreasing, so the result is then ~|PLCC|:
            the direction of the relation is absorbed by the fit (read it from SRCC).

    Returns:
        PLCC as a float; NaN (with a warning) when an input is constant.
    """
    _check_flag(fit_logistic, "fit_logistic", "PLCC")
    p, t = _prepare(pred, target, "PLCC")
    if _constant(p, t, "PLCC"):
        return float("nan")
    if fit_logistic:
        p = logistic_fit(p, t, "PLCC")
    return float(stats.pearsonr(p, t).statistic)


@METRIC_REGISTRY.register(lower_better=False)
def calculate_krcc(pred: Any, target: Any) -> float:
    """Kendall rank correlation (tau-b): fraction of image pairs ordered correctly. Range [-1, 1].

    Args:
        pred: Predicted scores, any shape.
        target: Ground-truth scores with the same number of elements.

    Returns:
        KRCC as a float; NaN (with a warning) when an input is constant.
    """
    p, t = _prepare(pred, target, "KRCC")
    if _constant(p, t, "KRCC"):
        return float("nan")
    return float(stats.kendalltau(p, t).statistic)


@METRIC_REGISTRY.register(lower_better=True)
def calculate_rmse(pred: Any, target: Any, fit_logistic: bool = False) -> float:
    """Root mean squared error in the target's units; lower is better.

    Unlike the correlations it is defined for constant inputs, so those return a number; only the
    logistic fit is skipped for them.

    Args:
        pred: Predicted scores, any shape.
        target: Ground-truth scores with the same number of elements.
        fit_logistic: First map ``pred`` onto the target scale with a fitted 4-parameter logistic,
            which makes RMSE comparable across models with different output ranges; falls back to
            raw scores (with a warning) if the fit fails.

    Returns:
        RMSE as a float.
    """
    _check_flag(fit_logistic, "fit_logistic", "RMSE")
    p, t = _prepare(pred, target, "RMSE")
    if fit_logistic:
        p = logistic_fit(p, t, "RMSE")
    return float(np.sqrt(np.mean((p - t) ** 2)))
