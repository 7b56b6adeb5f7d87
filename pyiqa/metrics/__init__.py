"""Evaluation metrics (functions), registered in METRIC_REGISTRY so a YAML ``type:`` selects them."""
from __future__ import annotations

from typing import Any, Mapping, Union

from ..utils.errors import ConfigError
from ..utils.registry import METRIC_REGISTRY, check_kwargs
from .correlation import calculate_krcc, calculate_plcc, calculate_rmse, calculate_srcc

__all__ = ["calculate_metric", "calculate_krcc", "calculate_plcc", "calculate_rmse",
           "calculate_srcc"]

# Supplied by the evaluation loop, so a config that sets them is a mistake, not an option.
_DATA_ARGS = ("pred", "target")


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
    if isinstance(opt, str):
        opt = {"type": opt}
    if not isinstance(opt, Mapping) or "type" not in opt:
        raise ConfigError(f"'{where}' must be a metric name or a mapping with a 'type' key, "
                          f"got {opt!r}")
    kwargs = {k: v for k, v in opt.items() if k != "type"}
    for key in _DATA_ARGS:
        if key in kwargs:
            raise ConfigError(f"'{where}.{key}' cannot be set in the config: predictions and "
                              f"targets come from the evaluation data; remove this key")
    fn = METRIC_REGISTRY.get(opt["type"])
    check_kwargs(fn, kwargs, where)
    return fn(pred, target, **kwargs)
