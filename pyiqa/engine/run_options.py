"""The options every training run has, whichever trainer runs it: one declaration, shared by the adapter
trainer's experiment YAML (:mod:`pyiqa.engine.config`) and train_clip's (:mod:`train_clip.options`).

:class:`pyiqa.engine.run.Run` receives these typed sections; a trainer extends them (the adapter's
``path`` also names weights to start from, its ``logger`` also numbered network snapshots).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional, Union

from ..utils.errors import ConfigError
from ..utils.experiment import check_run_name
from ..utils.option_fields import REQUIRED, option
from ..utils.options import check_flag, check_int
from ..utils.precision import check_precision
from ..utils.registry import closest

DIST_BACKENDS = ("gloo", "nccl", "mpi", "ucc")
MAX_GPUS = 4096
MAX_SEED = 2 ** 32 - 1  # NumPy's seed range
DEFAULT_KEEP_STATES = 2


def check_num_gpu(value: Any, where: str) -> Union[int, str]:
    if value == "auto":
        return value
    if isinstance(value, str) or value is None:
        raise ConfigError(f"'{where}' must be an integer >= 0 (0 = CPU) or 'auto', got {value!r}")
    return check_int(value, where, 0, integral_floats=False, maximum=MAX_GPUS)


def check_seed(value: Any, where: str) -> int:
    return check_int(value, where, 0, integral_floats=False, maximum=MAX_SEED)


def check_positive_int(value: Any, where: str) -> int:
    """An integer >= 1; the release writes some as ``!!float 1e3``, which counts as 1000."""
    return check_int(value, where, 1)


def check_text(value: Any, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"'{where}' must be the path of a file, got {value!r}")
    return value


def check_backend(value: Any, where: str) -> str:
    if value not in DIST_BACKENDS:
        raise ConfigError(f"'{where}' must be one of {list(DIST_BACKENDS)} (or absent: NCCL on GPUs, gloo on "
                          f"CPU), got {value!r}.{closest(str(value), DIST_BACKENDS)}")
    return value


@dataclasses.dataclass(frozen=True, kw_only=True)
class DistOptions:
    """``dist_params``: how the processes torchrun starts talk to each other."""

    backend: Optional[str] = option(None, "torch.distributed backend under torchrun (`--launcher pytorch`)",
                                    check=check_backend, shown_default="NCCL on GPUs, gloo on CPU")


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunPathOptions:
    """``path``: files the run starts from."""

    resume_state: Optional[str] = option(None, "a training state to continue (`--auto_resume` finds the "
                                         "newest by itself)", check=check_text)


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunLoggerOptions:
    """``logger``: what the run reports and how often it saves."""

    print_freq: int = option(100, "console and TensorBoard interval (iterations)", check=check_positive_int)
    save_latest_freq: int = option(1000, "interval (iterations) of the training state a killed run resumes "
                                   "from (and `net_latest.pth` in the adapter trainer)", check=check_positive_int)
    keep_checkpoints: int = option(DEFAULT_KEEP_STATES, "training states kept on disk (the newest is always "
                                   "complete: writes are atomic)", check=check_positive_int)
    use_tb_logger: bool = option(True, "TensorBoard event files in `tb_logger/`", check=check_flag)


@dataclasses.dataclass(frozen=True, kw_only=True)
class RunOptions:
    """The top-level keys and sections every trainer's YAML shares."""

    name: str = option(REQUIRED, "experiment folder name under `experiments/` (and `results/` for `test.py`)",
                       check=check_run_name)
    num_gpu: Union[int, str] = option("auto", "`0` = CPU; `1`/`auto` = CUDA when present, else CPU with a "
                                      "warning", check=check_num_gpu)
    manual_seed: int = option(0, "seeds Python, NumPy, torch, the sampler order and the DataLoader workers",
                              check=check_seed)
    precision: Optional[str] = option(
        None, "the dtype the CLIP computes in: `fp32`, `bf16`, `fp16` (CUDA only) or `auto` (bf16 on GPUs and "
        "on CPUs with AMX/AVX512-BF16, else fp32: on AVX2-only CPUs bf16 is several times *slower*). A frozen "
        "CLIP (adapter training, `test.py`, `create_metric`) loads its image tower's weights in that dtype; "
        "`train_clip` keeps fp32 weights and autocasts", check=check_precision,
        shown_default="adapter trainer: `auto` with the feature cache, else `fp32`; train_clip: `auto`")
    dist_params: DistOptions = dataclasses.field(default_factory=DistOptions)
    path: RunPathOptions = dataclasses.field(default_factory=RunPathOptions)
    logger: RunLoggerOptions = dataclasses.field(default_factory=RunLoggerOptions)
