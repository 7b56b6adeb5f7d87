"""Optimisers, schedules and the training step: restart cosine (exact resume), per-module rates, metric loss."""
from __future__ import annotations

import io
import math

import pytest
import torch

from pyiqa.models.optim import (CosineAnnealingRestartLR, build_optimizer, build_scheduler,
                                check_scheduler_options)
from pyiqa.utils.errors import ConfigError

from helpers import train_options


def sgd(lr: float = 1.0, groups: int = 1) -> torch.optim.SGD:
    return torch.optim.SGD([{"params": [torch.zeros(1, requires_grad=True)], "lr": lr * (i + 1)}
                            for i in range(groups)], lr=lr)


def expected_restart(t: int, base: float, periods, weights, eta_min: float) -> float:
    ends = [sum(periods[:i + 1]) for i in range(len(periods))]
    for i, end in enumerate(ends):
        if t <= end:
            start = ends[i - 1] if i else 0
            return eta_min + weights[i] * (base - eta_min) * (1 + math.cos(math.pi * (t - start) / periods[i])) / 2
    return eta_min


def test_restart_schedule_follows_each_weighted_cosine_then_holds_eta_min():
    periods, weights, eta_min = [3, 4], [1.0, 0.5], 0.1
    opt = sgd(1.0, groups=2)
    sched = build_scheduler(opt, {"type": "CosineAnnealingRestartLR", "periods": periods,
                                  "restart_weights": weights, "eta_min": eta_min})
    assert isinstance(sched, CosineAnnealingRestartLR)
    for t in range(10):
        got = sched.get_last_lr()
        assert got[0] == pytest.approx(expected_restart(t, 1.0, periods, weights, eta_min), abs=1e-12)
        assert got[1] == pytest.approx(expected_restart(t, 2.0, periods, weights, eta_min), abs=1e-12)
        opt.step()
        sched.step()
    assert sched.get_last_lr()[0] == pytest.approx(eta_min)  # past the last period
    # the cycle ends at eta_min; the next cycle restarts near its weight
    assert expected_restart(3, 1.0, periods, weights, eta_min) == pytest.approx(eta_min)
    assert expected_restart(4, 1.0, periods, weights, eta_min) > 0.4


def test_restart_schedule_state_round_trips_exactly_through_a_weights_only_file():
    cfg = {"type": "CosineAnnealingRestartLR", "periods": [5, 5, 5], "restart_weights": [1, 0.7, 0.3]}
    opt_a = sgd(0.5)
    sched_a = build_scheduler(opt_a, cfg)
    for _ in range(6):
        opt_a.step()
        sched_a.step()
    buf = io.BytesIO()
    torch.save({"optimizer": opt_a.state_dict(), "scheduler": sched_a.state_dict()}, buf)
    buf.seek(0)
    state = torch.load(buf, weights_only=True)
    opt_b = sgd(0.5)
    sched_b = build_scheduler(opt_b, cfg)
    opt_b.load_state_dict(state["optimizer"])
    sched_b.load_state_dict(state["scheduler"])
    for _ in range(12):
        opt_a.step()
        sched_a.step()
        opt_b.step()
        sched_b.step()
        assert sched_b.get_last_lr() == sched_a.get_last_lr()  # bit-identical, not approximately


def test_torch_warm_restarts_is_available_by_name():
    sched = build_scheduler(sgd(1.0), {"type": "CosineAnnealingWarmRestarts", "T_0": 2, "T_mult": 2,
                                       "eta_min": "1e-6"})  # YAML 1.1 string, read as the number
    assert isinstance(sched, torch.optim.lr_scheduler.CosineAnnealingWarmRestarts)
    assert sched.eta_min == 1e-6


@pytest.mark.parametrize("cfg,message", [
    ({"type": "CosineAnnealingRestartLR", "periods": []}, r"'train\.scheduler\.periods' must be a non-empty list"),
    ({"type": "CosineAnnealingRestartLR", "periods": [5, 0]}, r"periods' must be a non-empty list of integers >= 1"),
    ({"type": "CosineAnnealingRestartLR", "periods": [5], "restart_weights": [-1]},
     r"'train\.scheduler\.restart_weights' must be a list of 1 numbers >= 0"),
    ({"type": "CosineAnnealingRestartLR", "periods": [5], "perods": [5]}, r"Did you mean 'periods'"),
    ({"type": "MultiStepLR", "milestones": "10,20"}, r"'train\.scheduler\.milestones' must be a list of integers"),
])
def test_bad_schedules_are_config_errors(cfg, message):
    with pytest.raises(ConfigError, match=message):
        check_scheduler_options(cfg)


@pytest.fixture(scope="module")
def net(tiny_backbone):
    from pyiqa.archs import build_network
    return build_network({"type": "UniQA", "backbone": str(tiny_backbone), "prompts": ["quality"],
                          "embedding_dim": 32})


def trainable(net):
    """What IQAModel optimises: the score head's trainable tensors, named as in checkpoints."""
    return [(n, p) for n, p in net.head.named_parameters() if p.requires_grad]


def test_per_module_learning_rates_make_one_group_per_trainable_module(net):
    opt = build_optimizer(trainable(net), {"type": "Adam", "lr": 2e-4, "lr_score_level": "1e-2"})
    lrs = {g["module"]: g["lr"] for g in opt.param_groups}
    assert lrs == {"score_level": 1e-2, "adapter": 2e-4}  # adapter falls back to train.optim.lr
    n_params = sum(len(g["params"]) for g in opt.param_groups)
    assert n_params == len(trainable(net))
    plain = build_optimizer(trainable(net), {"type": "Adam", "lr": 2e-4})
    assert len(plain.param_groups) == 1  # no per-module keys: the layout older training states have


def test_unknown_module_lists_the_trainable_modules(net):
    with pytest.raises(ConfigError, match=r"'train\.optim\.lr_adaptr': 'adaptr' is not a trainable module of "
                                          r"this network\. Did you mean 'adapter'\? Trainable modules: "
                                          r"score_level, adapter"):
        build_optimizer(trainable(net), {"type": "Adam", "lr": 1e-3, "lr_adaptr": 1e-2})


def batch(n: int = 4):
    g = torch.Generator().manual_seed(0)
    return {"img": torch.rand(n, 3, 224, 224, generator=g), "mos_label": torch.rand(n, generator=g)}


def fed(model, b):
    """The batch as the standard loop hands it to train_step: images replaced by live embeddings."""
    from pyiqa.models.embedding_feed import EmbeddingFeed
    return next(iter(EmbeddingFeed.live([b], model.net, torch.device("cpu"), train=True)))


def test_train_step_adds_and_logs_the_metric_loss(demo_data, tiny_backbone):
    from pyiqa.losses import MSELoss, PLCCLoss
    from pyiqa.engine.options import parse_experiment
    from pyiqa.models import IQAModel
    opt = train_options("optim", demo_data, tiny_backbone)
    opt["train"].update(metric_loss_opt={"type": "PLCCLoss", "loss_weight": 0.5}, grad_clip_norm="1e3",
                        warmup_iter=-1)
    opt["train"]["optim"].update(lr_adapter=1e-2)
    opt["train"]["scheduler"] = {"type": "CosineAnnealingRestartLR", "periods": [2, 2], "restart_weights": [1, 0.5]}
    model = IQAModel(parse_experiment(opt, is_train=True)[0], torch.device("cpu"), is_train=True)
    b = batch()
    with torch.no_grad():
        pred = model.net(b["img"])
        want_mos, want_metric = MSELoss()(pred, b["mos_label"]), PLCCLoss(0.5)(pred, b["mos_label"])
    losses = model.train_step(fed(model, b), 1, step_scheduler=True)
    assert set(losses) == {"l_mos", "l_metric", "l_total"}
    assert losses["l_mos"] == pytest.approx(want_mos.item(), rel=1e-5)
    assert losses["l_metric"] == pytest.approx(want_metric.item(), rel=1e-5)
    assert losses["l_total"] == pytest.approx(losses["l_mos"] + losses["l_metric"], rel=1e-6)
    # both groups stepped by the restart schedule, each from its own base rate
    lrs = {g["module"]: g["lr"] for g in model.optimizer.param_groups}
    assert lrs["adapter"] == pytest.approx(1e-2 * 0.5)  # step 1 of a 2-step cosine
    assert lrs["score_level"] == pytest.approx(1e-3 * 0.5)
