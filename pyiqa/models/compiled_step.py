"""``train.compile``: the score head's forward and loss (and their backward) through ``torch.compile``.

A training step of the score head is a few dozen small kernels on a batch of embeddings. With the
feature cache nothing else runs, and on a GPU such a step is bound by kernel launches, not arithmetic:
torch.compile fuses the kernels, and its ``reduce-overhead`` mode (the default on CUDA) records them as
CUDA graphs, replayed with one launch each. On CPUs the eager step is already short and compiling gains
little (ViT-B/16 widths on 2 cores: 0.95 -> 0.85 ms a step, ``scripts/benchmark_cached_step.py``) for a
compilation of seconds, so the option is off by default.
"""
from __future__ import annotations

import logging
import os
import shutil
from typing import Any, Callable, Optional, Union

import torch

from ..utils.errors import ConfigError

logger = logging.getLogger(__name__)

MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")  # torch.compile's


def check_compile(value: Any, where: str) -> Union[bool, str]:
    """``value`` if it is true, false or one of torch.compile's modes."""
    if isinstance(value, bool) or value in MODES:
        return value
    raise ConfigError(f"'{where}' must be true, false or a torch.compile mode ({', '.join(MODES)}), got {value!r}")


def compile_mode(setting: Union[bool, str], device: torch.device) -> Optional[str]:
    """The torch.compile mode ``setting`` means on ``device``; None: run eagerly."""
    if setting is False:
        return None
    if setting is True:
        return "reduce-overhead" if device.type == "cuda" else "default"
    return setting


def cxx_compiler() -> Optional[str]:
    """The C++ compiler torch.compile's CPU code generation will call ($CXX, else g++), or None."""
    return shutil.which(os.environ.get("CXX") or "g++")


def compiled(fn: Callable, setting: Union[bool, str], device: torch.device,
             where: str = "train.compile") -> Callable:
    """``fn`` compiled as ``setting`` asks on ``device`` (``fn`` itself when it is false).

    Raises:
        ConfigError: compiling on a CPU without a C++ compiler (found before anything runs, not at the
            first step).
    """
    mode = compile_mode(setting, device)
    if mode is None:
        return fn
    if device.type == "cpu" and cxx_compiler() is None:
        raise ConfigError(f"'{where}: {setting}' compiles the training step with a C++ compiler on CPUs, and none "
                          f"was found ({os.environ.get('CXX') or 'g++'}; set $CXX to another); install one (e.g. "
                          f"apt install g++) or set {where}: false")
    logger.info("Training step compiled with torch.compile, mode '%s' (the first steps include the compilation)",
                mode)
    return torch.compile(fn, mode=mode, dynamic=False)
