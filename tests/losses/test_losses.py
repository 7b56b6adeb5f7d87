"""Losses against hand-computed values, plus weighting, gradients, shapes and config errors."""
import math

import pytest
import torch

from pyiqa.losses import L1Loss, MSELoss, PLCCLoss, build_loss
from pyiqa.utils.errors import ConfigError
from pyiqa.utils.registry import LOSS_REGISTRY

PRED = torch.tensor([[1.0], [2.0], [3.0]])  # model-style (N, 1)
TARGET = torch.tensor([1.0, 3.0, 5.0])      # dataset-style (N,)


@pytest.mark.parametrize("cls, reduction, expected", [
    (MSELoss, "mean", 5.0 / 3.0),  # squared errors 0, 1, 4
    (MSELoss, "sum", 5.0),
    (L1Loss, "mean", 1.0),          # absolute errors 0, 1, 2
    (L1Loss, "sum", 3.0),
])
def test_pointwise_losses_hand_values(cls, reduction, expected):
    loss = cls(reduction=reduction)(PRED, TARGET)
    assert loss.dim() == 0
    assert loss.item() == pytest.approx(expected)


def test_pointwise_losses_do_not_broadcast_n1_against_n():
    # (N, 1) - (N,) would broadcast to (N, N) = mean 3.0 for MSE; flattening must prevent that.
    assert MSELoss()(PRED, TARGET).item() == pytest.approx(5.0 / 3.0)
    assert MSELoss()(PRED.view(-1), TARGET.view(-1, 1)).item() == pytest.approx(5.0 / 3.0)


def test_plcc_loss_hand_value():
    pred = torch.tensor([1.0, 2.0, 3.0])
    target = torch.tensor([2.0, 4.0, 7.0])
    # centred: p = (-1, 0, 1), t = (-7/3, -1/3, 8/3); sum p*t = 5, |p| = sqrt(2), |t| = sqrt(114)/3
    expected = 1.0 - 15.0 / math.sqrt(228.0)
    assert PLCCLoss()(pred, target).item() == pytest.approx(expected, abs=1e-6)


def test_plcc_loss_extremes():
    x = torch.tensor([0.1, 0.5, 0.2, 0.9])
    assert PLCCLoss()(x, 3 * x + 7).item() == pytest.approx(0.0, abs=1e-6)
    assert PLCCLoss()(x, -2 * x).item() == pytest.approx(2.0, abs=1e-6)


@pytest.mark.parametrize("loss", [MSELoss(), L1Loss(), PLCCLoss()])
def test_loss_weight_scales(loss):
    torch.manual_seed(0)
    pred, target = torch.randn(6, 1), torch.randn(6)
    weighted = type(loss)(loss_weight=0.25)
    assert weighted(pred, target).item() == pytest.approx(0.25 * loss(pred, target).item(), rel=1e-6)


def test_plcc_loss_gradients_finite():
    torch.manual_seed(0)
    pred = torch.randn(8, 1, requires_grad=True)
    PLCCLoss()(pred, torch.randn(8)).backward()
    assert torch.isfinite(pred.grad).all() and pred.grad.abs().sum() > 0


def test_plcc_loss_constant_batch_is_finite():
    pred = torch.full((4, 1), 0.5, requires_grad=True)
    loss = PLCCLoss()(pred, torch.tensor([1.0, 2.0, 3.0, 4.0]))
    loss.backward()
    assert loss.item() == pytest.approx(1.0)
    assert torch.isfinite(pred.grad).all()


def test_plcc_loss_half_precision_input():
    pred = torch.tensor([100.0, 200.0, 300.0, 400.0], dtype=torch.float16)
    loss = PLCCLoss()(pred, pred.float() * 2)
    assert torch.isfinite(loss) and loss.item() == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("batch", [torch.tensor([1.0]), torch.tensor([[1.0]])])
def test_plcc_loss_rejects_batch_of_one(batch):
    with pytest.raises(ValueError, match="at least 2 samples"):
        PLCCLoss()(batch, torch.tensor([2.0]))


@pytest.mark.parametrize("loss", [MSELoss(), L1Loss(), PLCCLoss()])
def test_score_losses_reject_mismatched_sizes(loss):
    with pytest.raises(ValueError, match=r"pred shape \(3, 1\).*target shape \(4,\)"):
        loss(torch.zeros(3, 1), torch.zeros(4))


@pytest.mark.parametrize("cls", [MSELoss, L1Loss])
def test_bad_reduction_is_config_error(cls):
    with pytest.raises(ConfigError, match="Did you mean 'mean'"):
        cls(reduction="meen")


@pytest.mark.parametrize("kwargs, match", [
    ({"loss_weight": "1.0"}, "loss_weight"),
    ({"loss_weight": float("nan")}, "loss_weight"),
])
def test_bad_numeric_options_are_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        PLCCLoss(**kwargs)


def test_registry_and_build_loss():
    assert set(LOSS_REGISTRY.keys()) == {"MSELoss", "L1Loss", "PLCCLoss"}
    loss = build_loss({"type": "L1Loss", "loss_weight": 2.0}, "train.mos_loss_opt")
    assert isinstance(loss, L1Loss) and loss.loss_weight == 2.0
    with pytest.raises(ConfigError, match=r"train\.mos_loss_opt\.loss_wieght.*Did you mean 'loss_weight'"):
        build_loss({"type": "L1Loss", "loss_wieght": 2.0}, "train.mos_loss_opt")
    with pytest.raises(ConfigError, match="Did you mean 'PLCCLoss'"):
        build_loss({"type": "PLCCloss"}, "train.mos_loss_opt")
