"""Correlation metrics against scipy.stats and hand-computed values, plus errors and config checks."""
import logging
import math

import numpy as np
import pytest
import torch
from scipy import stats

from pyiqa.metrics import (calculate_krcc, calculate_metric, calculate_plcc, calculate_rmse,
                           calculate_srcc, lower_is_better)
from pyiqa.metrics import correlation
from pyiqa.utils.errors import ConfigError
from pyiqa.utils.registry import METRIC_REGISTRY, Registry

RNG = np.random.default_rng(0)
PRED = RNG.normal(size=50)
TARGET = PRED + RNG.normal(scale=0.7, size=50)


def test_hand_computed_small_examples():
    # ranks differ by 0, 1, 1, 0 -> SRCC = 1 - 6 * 2 / (4 * 15) = 0.8
    assert calculate_srcc([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(0.8)
    # 6 pairs, one discordant -> (5 - 1) / 6
    assert calculate_krcc([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(2 / 3)
    # centred (-1, 0, 1) vs (-7/3, -1/3, 8/3): 5 / (sqrt(2) * sqrt(114) / 3)
    assert calculate_plcc([1, 2, 3], [2, 4, 7]) == pytest.approx(15 / math.sqrt(228))
    # errors 0, 1, 2
    assert calculate_rmse([1, 2, 3], [1, 3, 5]) == pytest.approx(math.sqrt(5 / 3))


def test_match_scipy():
    assert calculate_srcc(PRED, TARGET) == pytest.approx(stats.spearmanr(PRED, TARGET)[0])
    assert calculate_plcc(PRED, TARGET) == pytest.approx(stats.pearsonr(PRED, TARGET)[0])
    assert calculate_krcc(PRED, TARGET) == pytest.approx(stats.kendalltau(PRED, TARGET)[0])
    assert calculate_rmse(PRED, TARGET) == pytest.approx(np.sqrt(np.mean((PRED - TARGET) ** 2)))


@pytest.mark.parametrize("fn", [calculate_srcc, calculate_plcc, calculate_krcc, calculate_rmse])
def test_inputs_of_any_type_and_shape(fn):
    expected = fn(PRED, TARGET)
    result = fn(torch.tensor(PRED, dtype=torch.float32).view(50, 1), list(TARGET))
    assert type(result) is float
    assert result == pytest.approx(expected, rel=1e-5)
    assert fn(PRED.reshape(5, 10), TARGET.reshape(10, 5)) == pytest.approx(expected)


def test_logistic_fit_improves_plcc_on_monotonic_nonlinear_relation():
    pred = np.linspace(-6, 6, 60)
    target = 1 + 4 / (1 + np.exp(-(pred - 0.5) / 1.3))  # a 1..5 MOS-like sigmoid of pred
    raw, fitted = calculate_plcc(pred, target), calculate_plcc(pred, target, fit_logistic=True)
    assert fitted >= raw
    assert fitted == pytest.approx(1.0, abs=1e-6)
    assert calculate_rmse(pred, target, fit_logistic=True) == pytest.approx(0.0, abs=1e-4)
    assert calculate_rmse(pred, target, fit_logistic=True) < calculate_rmse(pred, target)


def test_logistic_fit_absorbs_a_decreasing_relation():
    # The fitted curve is decreasing too, so fitted PLCC is ~1 while SRCC keeps the sign.
    pred = np.linspace(-3, 3, 40)
    target = 1 / (1 + np.exp(pred))
    assert calculate_plcc(pred, target, fit_logistic=True) == pytest.approx(1.0, abs=1e-6)
    assert calculate_srcc(pred, target) == pytest.approx(-1.0)


def test_logistic_fit_failure_falls_back_to_raw(monkeypatch, caplog):
    def fail(*args, **kwargs):
        raise RuntimeError("Optimal parameters not found")

    monkeypatch.setattr(correlation, "curve_fit", fail)
    with caplog.at_level(logging.WARNING, logger=correlation.__name__):
        value = calculate_plcc(PRED, TARGET, fit_logistic=True)
    assert value == pytest.approx(calculate_plcc(PRED, TARGET))
    assert "logistic fit failed" in caplog.text


@pytest.mark.parametrize("fn", [calculate_srcc, calculate_plcc, calculate_krcc])
def test_constant_input_returns_nan_with_warning(fn, caplog):
    with caplog.at_level(logging.WARNING, logger=correlation.__name__):
        assert math.isnan(fn([2.0, 2.0, 2.0], [1.0, 2.0, 3.0]))
    assert "pred is constant" in caplog.text


def test_rmse_defined_for_constant_input():
    assert calculate_rmse([2.0, 2.0], [1.0, 3.0]) == pytest.approx(1.0)


@pytest.mark.parametrize("fn", [calculate_srcc, calculate_plcc, calculate_krcc, calculate_rmse])
def test_error_cases(fn):
    with pytest.raises(ValueError, match="at least 2 samples, got 1"):
        fn([1.0], [1.0])
    with pytest.raises(ValueError, match=r"pred shape \(3,\).*target shape \(2, 2\)"):
        fn([1.0, 2.0, 3.0], np.zeros((2, 2)))
    with pytest.raises(ValueError, match="2 in pred, 1 in target"):
        fn([1.0, np.nan, np.inf, 4.0], [1.0, 2.0, 3.0, np.nan])


def test_fit_logistic_must_be_bool():
    with pytest.raises(ConfigError, match="fit_logistic"):
        calculate_plcc(PRED, TARGET, fit_logistic="false")


def test_calculate_metric_runs_registered_function():
    opt = {"type": "calculate_plcc", "fit_logistic": False}
    assert calculate_metric(opt, PRED, TARGET) == pytest.approx(calculate_plcc(PRED, TARGET))
    assert calculate_metric("calculate_srcc", PRED, TARGET) == pytest.approx(
        calculate_srcc(PRED, TARGET))


def test_calculate_metric_unknown_key_suggests_closest():
    with pytest.raises(ConfigError,
                       match=r"val\.metrics\.plcc\.fit_logistc'\. Did you mean 'fit_logistic'"):
        calculate_metric({"type": "calculate_plcc", "fit_logistc": True}, PRED, TARGET,
                         where="val.metrics.plcc")


def test_calculate_metric_unknown_type_lists_known():
    with pytest.raises(ConfigError, match=r"Did you mean 'calculate_srcc'.*Known metric types:.*"
                                          r"calculate_krcc.*calculate_plcc"):
        calculate_metric({"type": "calculate_srocc"}, PRED, TARGET)


@pytest.mark.parametrize("key", ["pred", "target"])
def test_calculate_metric_rejects_data_keys(key):
    with pytest.raises(ConfigError, match=rf"val\.metrics\.{key}' cannot be set"):
        calculate_metric({"type": "calculate_srcc", key: [1, 2]}, PRED, TARGET)


def test_calculate_metric_rejects_malformed_opt():
    with pytest.raises(ConfigError, match="'type' key"):
        calculate_metric({"fit_logistic": True}, PRED, TARGET)


def test_every_metric_declares_its_direction():
    assert {name: lower_is_better({"type": name}) for name in METRIC_REGISTRY.keys()} == {
        "calculate_srcc": False, "calculate_plcc": False, "calculate_krcc": False, "calculate_rmse": True}
    assert lower_is_better({"type": "calculate_rmse", "fit_logistic": True})  # options do not matter
    assert lower_is_better("calculate_rmse") and not lower_is_better("calculate_srcc")
    assert "calculate_rmse: pyiqa.metrics.correlation, lower_better=True" in repr(METRIC_REGISTRY)


def test_lower_is_better_of_unknown_or_malformed_entries():
    with pytest.raises(ConfigError, match=r"Unknown metric type 'calculate_rmsee'.*Did you mean "
                                          r"'calculate_rmse'"):
        lower_is_better({"type": "calculate_rmsee"})
    with pytest.raises(ConfigError, match=r"'val\.metrics\.x' must be a metric name or a mapping"):
        lower_is_better({"fit_logistic": True}, where="val.metrics.x")


def test_registering_without_a_required_fact_fails():
    reg = Registry("thing", required_meta=("lower_better",))
    with pytest.raises(TypeError, match=r"'f' must declare \['lower_better'\]"):
        reg.register(lambda: 0, name="f")
    reg.register(lambda: 0, name="g", lower_better=True)
    assert reg.meta("g") == {"lower_better": True} and "f" not in reg
    with pytest.raises(ConfigError, match="Unknown thing type 'h'"):
        reg.meta("h")
