"""Optimisers and LR schedules from ``train.optim`` / ``train.scheduler``, with linear warm-up.

Warm-up multiplies the scheduled learning rate by ``iter / warmup_iter`` for the first iterations; the
scheduler itself never sees the warmed-up value, so closed-form and recursive schedules stay exact.

Per-module learning rates (pyiqa's ``lr_<part>`` convention): ``train.optim`` may carry
``lr_<module>`` keys naming a top-level trainable module of the network (for UniQA: ``adapter``,
``score_level``)::

    optim: {type: Adam, lr: !!float 2e-4, lr_score_level: !!float 1e-2}

The optimiser then has one parameter group per trainable module, in the network's order; a module
without its own key uses ``lr``. Without such keys all trainable tensors form one group. An unknown
module name is a ConfigError listing the trainable modules.

``check_optimizer_options`` / ``check_scheduler_options`` run the same checks without a network, so
``validate_options`` can refuse a bad section at start-up, before data or model are built.
"""
from __future__ import annotations

import bisect
import contextlib
import itertools
import math
from typing import Any, Dict, Iterable, Iterator, List, Optional, Sequence, Tuple

import torch
from torch.optim.lr_scheduler import LRScheduler

from ..utils.errors import ConfigError
from ..utils.options import as_number
from ..utils.registry import check_kwargs, closest

GROUP_LR_PREFIX = "lr_"


class CosineAnnealingRestartLR(LRScheduler):
    """Cosine annealing restarted after each period, the peak of period ``i`` scaled by
    ``restart_weights[i]``: the restart schedule of pyiqa (after BasicSR), so its configs train alike.

    With ``t`` the scheduler step (epoch or iteration), period ``i`` covering steps
    ``(c[i-1], c[i]]`` (``c`` the cumulative sums of ``periods``, ``c[-1] = 0`` and step 0 in period 0)::

        lr(t) = eta_min + restart_weights[i] * (base_lr - eta_min) * (1 + cos(pi * (t - c[i-1]) / periods[i])) / 2

    Past the last period the rate stays at ``eta_min`` (the end of the last cosine). The rate is a
    closed form of ``last_epoch``, and the state (``state_dict``) holds only numbers and lists, so a
    restored scheduler continues exactly and training states stay ``weights_only``-loadable.

    Args:
        optimizer: wrapped optimiser; every parameter group follows its own ``initial_lr``.
        periods: length of each cosine cycle, in scheduler steps (integers >= 1).
        restart_weights: peak factor of each cycle (one per period, >= 0); default 1 for all.
        eta_min: the floor every cycle anneals to.
        last_epoch: index of the last step taken (-1: start fresh).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, periods: Sequence[int],
                 restart_weights: Optional[Sequence[float]] = None, eta_min: float = 0.0,
                 last_epoch: int = -1):
        where = "train.scheduler"
        if not isinstance(periods, (list, tuple)) or not periods or not all(
                _is_int(p) and p >= 1 for p in periods):
            raise ConfigError(f"'{where}.periods' must be a non-empty list of integers >= 1 (steps per "
                              f"cosine cycle), got {periods!r}")
        if restart_weights is None:
            restart_weights = [1.0] * len(periods)
        weights = [as_number(w) for w in restart_weights] if isinstance(restart_weights, (list, tuple)) else None
        if weights is None or any(w is None or not math.isfinite(w) or w < 0 for w in weights) \
                or len(weights) != len(periods):
            raise ConfigError(f"'{where}.restart_weights' must be a list of {len(periods)} numbers >= 0 "
                              f"(one per period {list(periods)}), got {restart_weights!r}")
        floor = as_number(eta_min)
        if floor is None or not math.isfinite(floor) or floor < 0:
            raise ConfigError(f"'{where}.eta_min' must be a number >= 0, got {eta_min!r}")
        self.periods = [int(p) for p in periods]
        self.restart_weights = weights
        self.eta_min = floor
        self.cumulative_period = list(itertools.accumulate(self.periods))
        super().__init__(optimizer, last_epoch)

    def _lr_at(self, base_lr: float, step: int) -> float:
        i = bisect.bisect_left(self.cumulative_period, step)  # first cycle whose end is >= step
        if i >= len(self.periods):
            return self.eta_min
        start = self.cumulative_period[i - 1] if i > 0 else 0
        progress = (step - start) / self.periods[i]
        return self.eta_min + self.restart_weights[i] * (base_lr - self.eta_min) * 0.5 * (
            1.0 + math.cos(math.pi * progress))

    def get_lr(self) -> List[float]:
        return [self._lr_at(base, self.last_epoch) for base in self.base_lrs]

    def _get_closed_form_lr(self) -> List[float]:
        return self.get_lr()


OPTIMIZERS = {"Adam": torch.optim.Adam, "AdamW": torch.optim.AdamW, "SGD": torch.optim.SGD}
SCHEDULERS = {"CosineAnnealingLR": torch.optim.lr_scheduler.CosineAnnealingLR,
              "CosineAnnealingWarmRestarts": torch.optim.lr_scheduler.CosineAnnealingWarmRestarts,
              "CosineAnnealingRestartLR": CosineAnnealingRestartLR,
              "MultiStepLR": torch.optim.lr_scheduler.MultiStepLR}

# Optimiser options that are numbers; YAML 1.1 reads '1e-4' as a string, so numeric strings count.
_OPTIM_NUMBERS = {"lr": (0.0, False), "weight_decay": (0.0, True), "momentum": (0.0, True),
                  "eps": (0.0, False), "dampening": (0.0, True)}  # key -> (bound, bound allowed)
# Scheduler options: integer counts (>= 1) and numbers (>= 0) checked before torch sees them.
_SCHED_COUNTS = ("T_max", "T_0", "T_mult")
_SCHED_NUMBERS = ("eta_min", "gamma")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _pick(table: Dict[str, Any], opt: Any, where: str, extra_keys: Iterable[str] = ()) -> Tuple[Any, Dict[str, Any]]:
    """(class, kwargs) of a ``{type: ..., **kwargs}`` section; names checked against the class."""
    if not isinstance(opt, dict) or "type" not in opt:
        raise ConfigError(f"'{where}' must be a mapping with a 'type' key, got {opt!r}")
    name = opt["type"]
    if not isinstance(name, str) or name not in table:
        raise ConfigError(f"Unknown '{where}.type' {name!r}.{closest(str(name), table)} Known: {sorted(table)}")
    kwargs = {k: v for k, v in opt.items() if k != "type" and k not in extra_keys}
    for reserved in ("params", "optimizer"):
        if reserved in kwargs:
            raise ConfigError(f"'{where}.{reserved}' is set by the trainer, remove it from the YAML")
    check_kwargs(table[name], kwargs, where)
    return table[name], kwargs


def _number(value: Any, where: str, bound: float, inclusive: bool) -> float:
    number = as_number(value)
    ok = number is not None and math.isfinite(number) and (number >= bound if inclusive else number > bound)
    if not ok:
        raise ConfigError(f"'{where}' must be a finite number {'>=' if inclusive else '>'} {bound:g}, got "
                          f"{value!r}")
    return number


def _optimizer_parts(opt: Any, where: str) -> Tuple[Any, Dict[str, Any], Dict[str, float]]:
    """(class, kwargs with numbers converted, {module: lr}) of ``train.optim``; raises ConfigError."""
    group_keys = [k for k in (opt if isinstance(opt, dict) else {}) if str(k).startswith(GROUP_LR_PREFIX)]
    cls, kwargs = _pick(OPTIMIZERS, opt, where, extra_keys=group_keys)
    for key, (bound, inclusive) in _OPTIM_NUMBERS.items():
        if key in kwargs:
            kwargs[key] = _number(kwargs[key], f"{where}.{key}", bound, inclusive)
    module_lrs = {k[len(GROUP_LR_PREFIX):]: _number(opt[k], f"{where}.{k}", 0.0, False) for k in group_keys}
    if "" in module_lrs:
        raise ConfigError(f"'{where}.{GROUP_LR_PREFIX}' names no module; write {GROUP_LR_PREFIX}<module>, "
                          f"e.g. lr_adapter")
    try:  # torch's own argument checks (betas range, ...), on a throwaway tensor
        cls([torch.zeros(1, requires_grad=True)], **kwargs)
    except (ValueError, TypeError, IndexError, KeyError) as err:
        raise ConfigError(f"'{where}' is not valid for {opt['type']}: {err}") from err
    return cls, kwargs, module_lrs


def check_optimizer_options(opt: Any, where: str = "train.optim") -> None:
    """Validate ``train.optim`` without a network: type, option names, numbers, ``lr_<module>`` values."""
    _optimizer_parts(opt, where)


def build_optimizer(named_params: Iterable[Tuple[str, torch.nn.Parameter]], opt: Dict[str, Any],
                    where: str = "train.optim") -> torch.optim.Optimizer:
    """The optimiser of ``train.optim`` over the trainable tensors.

    Args:
        named_params: ``(name, parameter)`` of the trainable tensors (``net.named_parameters()``
            filtered on ``requires_grad``); the first part of a name is its module (``adapter.fc.0.weight``
            belongs to ``adapter``), which ``lr_<module>`` keys select.
        opt: the ``train.optim`` mapping (not modified).
        where: its config path, for error messages.
    """
    cls, kwargs, module_lrs = _optimizer_parts(opt, where)
    by_module: Dict[str, List[torch.nn.Parameter]] = {}
    for name, param in named_params:
        by_module.setdefault(name.split(".")[0], []).append(param)
    if not by_module:
        raise ConfigError(f"'{where}': the network has no trainable parameters to optimise")
    unknown = sorted(set(module_lrs) - set(by_module))
    if unknown:
        raise ConfigError(f"'{where}.{GROUP_LR_PREFIX}{unknown[0]}': '{unknown[0]}' is not a trainable module "
                          f"of this network.{closest(unknown[0], by_module)} Trainable modules: "
                          f"{', '.join(by_module)} (set as {GROUP_LR_PREFIX}<module>)")
    if not module_lrs:
        return cls([p for params in by_module.values() for p in params], **kwargs)
    groups = [{"params": params, "module": module, **({"lr": module_lrs[module]} if module in module_lrs else {})}
              for module, params in by_module.items()]
    return cls(groups, **kwargs)


def _scheduler_parts(opt: Any, where: str) -> Tuple[Any, Dict[str, Any]]:
    cls, kwargs = _pick(SCHEDULERS, opt, where)
    for key in _SCHED_COUNTS:
        if key in kwargs and not (_is_int(kwargs[key]) and kwargs[key] >= 1):
            raise ConfigError(f"'{where}.{key}' must be an integer >= 1 (scheduler steps), got {kwargs[key]!r}")
    for key in _SCHED_NUMBERS:
        if key in kwargs:
            kwargs[key] = _number(kwargs[key], f"{where}.{key}", 0.0, key == "eta_min")
    if "milestones" in kwargs:
        ms = kwargs["milestones"]
        if not isinstance(ms, (list, tuple)) or not all(_is_int(m) and m >= 1 for m in ms):
            raise ConfigError(f"'{where}.milestones' must be a list of integers >= 1 (scheduler steps), "
                              f"got {ms!r}")
    return cls, kwargs


def check_scheduler_options(opt: Any, where: str = "train.scheduler") -> None:
    """Validate ``train.scheduler`` (``None``/empty: constant rate) by building it on a throwaway
    optimiser, so torch's and our constructors' own checks run at start-up too."""
    if not opt:
        return
    try:
        build_scheduler(torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=1.0), opt, where)
    except (ValueError, TypeError, IndexError, KeyError, ArithmeticError) as err:
        if isinstance(err, ConfigError):
            raise
        raise ConfigError(f"'{where}' is not valid for {opt.get('type')}: {err}") from err


def build_scheduler(optimizer: torch.optim.Optimizer, opt: Optional[Dict[str, Any]],
                    where: str = "train.scheduler") -> LRScheduler:
    """The configured schedule, or a constant one when ``opt`` is empty."""
    if not opt:
        return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    cls, kwargs = _scheduler_parts(opt, where)
    return cls(optimizer, **kwargs)


def warmup_factor(current_iter: int, warmup_iter: Optional[float]) -> float:
    """The warm-up of both trainers: the learning rate of step ``current_iter`` (1-based) is its
    scheduled value times this linear ramp 1/warmup .. 1 over the first ``warmup_iter`` steps
    (``-1``/``None``/0: none). train_clip's schedule is a pure function of the step, so it multiplies
    directly (:func:`train_clip.optim.lr_at`); the adapter trainer's torch schedulers own the groups'
    ``lr``, so it scales them for the step only (:func:`warmed_up`)."""
    if not warmup_iter or warmup_iter <= 0 or current_iter >= warmup_iter:
        return 1.0
    return max(current_iter, 1) / warmup_iter


@contextlib.contextmanager
def warmed_up(optimizer: torch.optim.Optimizer, factor: float) -> Iterator[float]:
    """Within the block the groups' learning rates are the scheduled ones times ``factor``; yields the
    first group's. Restored afterwards, so a recursive torch schedule never compounds the warm-up."""
    scheduled = [g["lr"] for g in optimizer.param_groups]
    for g, lr in zip(optimizer.param_groups, scheduled):
        g["lr"] = lr * factor
    try:
        yield scheduled[0] * factor
    finally:
        for g, lr in zip(optimizer.param_groups, scheduled):
            g["lr"] = lr
