"""Evaluation metrics (functions), registered in METRIC_REGISTRY so a YAML ``type:`` selects them.

Each metric declares its direction when it registers (``@METRIC_REGISTRY.register(lower_better=...)``);
``lower_is_better`` reads it, so choosing the best checkpoint never guesses from a metric's name.
"""
from __future__ import annotations

from typing import Any, Mapping, Union

from ..utils.errors import ConfigError
from ..utils.registry import METRIC_REGISTRY, check_kwargs
from .correlation import calculate_krcc, calculate_plcc, calculate_rmse, calculate_srcc

__all__ = ["DEFAULT_METRICS", "calculate_metric", "calculate_krcc", "calculate_plcc", "calculate_rmse",
           "calculate_srcc", "lower_is_better"]

# What test sets report when a config names no metrics (``val.metrics`` absent).
DEFAULT_METRICS = {"srcc": {"type": "calculate_srcc"}, "plcc": {"type": "calculate_plcc"},
                   "krcc": {"type": "calculate_krcc"}, "rmse": {"type": "calculate_rmse"}}

# Supplied by the evaluation loop, so a config that sets them is a mistake, not an option.
_DATA_ARGS = ("pred", "target")


def _metric_type(opt: Union[str, Mapping[str, Any]], where: str) -> str:
    """The registered name a metric entry selects: the entry itself or its 'type' key."""
    name = opt.get("type") if isinstance(opt, Mapping) else opt
    if not isinstance(name, str):
        raise ConfigError(f"'{where}' must be a metric name or a mapping with a 'type' key, "
                          f"got {opt!r}")
    return name


def lower_is_better(metric_opt: Union[str, Mapping[str, Any]], where: str = "val.metrics") -> bool:
    """Whether a smaller value of the metric is better, as the metric declared when it registered.

    Args:
        metric_opt: a ``val.metrics`` entry (``{'type': 'calculate_rmse', ...}``) or a metric name.
        where: config path of ``metric_opt`` for error messages.

    Raises:
        ConfigError: not a metric entry, or an unknown metric type (the message lists the known ones).
    """
    return bool(METRIC_REGISTRY.meta(_metric_type(metric_opt, where))["lower_better"])


def calculate_metric(opt: Union[str, Mapping[str, Any]], pred: Any, target: Any,
                     where: str = "val.metrics") -> float:
    """Compute the metric described by a config entry, validating its options first.

    Metrics are plain functions, so instead of ``METRIC_REGISTRY.build`` this looks the function up,
    checks the remaining keys against its signature (unknown keys name the closest valid one) and
    calls it on the data.

    Args:
        opt: ``{'type': 'calculate_plcc', 'fit_logistic': True}``, or just the type name.
        pred: Predicted scores (list, numpy array or tensor).
        target: Ground-truth scores with the same number of elements.
        where: Config path of ``opt``, used in error messages (e.g. ``val.metrics.plcc``).

    Returns:
        The metric value as a Python float.
    """
    name = _metric_type(opt, where)
    opt = opt if isinstance(opt, Mapping) else {"type": name}
    kwargs = {k: v for k, v in opt.items() if k != "type"}
    for key in _DATA_ARGS:
        if key in kwargs:
            raise ConfigError(f"'{where}.{key}' cannot be set in the config: predictions and "
                              f"targets come from the evaluation data; remove this key")
    fn = METRIC_REGISTRY.get(name)
    check_kwargs(fn, kwargs, where)
    return fn(pred, target, **kwargs)
