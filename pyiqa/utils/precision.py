"""``precision``: the one place that says which number format the CLIP computes in, and how.

One word, one meaning everywhere (the adapter YAML, ``create_metric(precision=)``, ``train_clip``):
the dtype of the CLIP's forward computation. How that dtype is reached depends on whether the CLIP
trains:

* frozen CLIP (UniQA: adapter training, testing, scoring): its image tower's *weights* are loaded in
  that dtype (:func:`weight_dtype`): on CPUs with AMX or AVX512-BF16 bf16 weights are 2-4x faster than
  fp32 *and* half the memory; the adapter, score levels and text embeddings stay float32;
* trained CLIP (``train_clip``): weights stay float32 and the forward pass runs under
  :func:`autocast` to that dtype (fp16 adds a gradient scaler there).

bf16 is several times *slower* than fp32 on CPUs without those instructions (e.g. AVX2-only), so
``auto`` checks the hardware instead of guessing.
"""
from __future__ import annotations

import contextlib
import functools
import logging
from pathlib import Path
from typing import Any, Callable, ContextManager, Dict, Union

import torch

from .errors import ConfigError
from .registry import closest

logger = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
PRECISIONS = (*DTYPES, "auto")


def default_precision(feature_cache: bool) -> str:
    """The adapter trainer's ``precision`` when its options name none: ``auto`` with the feature cache
    (the tower only builds the cache, so in the fastest dtype), else fp32 (the release's numbers)."""
    return "auto" if feature_cache else "fp32"


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """True when the CPU advertises AMX-BF16 or AVX512-BF16 (Linux /proc/cpuinfo)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def check_precision(value: object, where: str = "precision") -> str:
    """``value`` if it is one of PRECISIONS, else a ConfigError naming ``where`` and the valid values."""
    if value not in PRECISIONS:
        raise ConfigError(f"'{where}' must be one of {list(PRECISIONS)}, got {value!r}."
                          f"{closest(str(value), PRECISIONS)}")
    return str(value)


def resolve_precision(value: object, device: Union[str, torch.device], where: str = "precision") -> str:
    """The concrete precision ('fp32', 'bf16' or 'fp16') to use on ``device``.

    ``auto``: bf16 on CUDA GPUs that support it (else fp16) and on CPUs with fast bf16, else fp32.

    Raises:
        ConfigError: an unknown value, or fp16 on a CPU (PyTorch's CPU fp16 kernels are slow and some
            are missing; use bf16 or fp32 there).
    """
    value = check_precision(value, where)
    device = torch.device(device)
    if value == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if cpu_has_fast_bf16() else "fp32"
    if value == "fp16" and device.type != "cuda":
        raise ConfigError(f"'{where}: fp16' needs CUDA; on CPU use bf16 (fast only with AMX/AVX512-BF16), "
                          "fp32, or auto to choose")
    if value == "bf16" and device.type == "cpu" and not cpu_has_fast_bf16():
        logger.warning("%s: bf16 on a CPU without AMX/AVX512-BF16 is several times SLOWER than fp32; "
                       "use auto or fp32", where)
    return value


def weight_dtype(precision: str) -> torch.dtype:
    """The weight dtype of a frozen CLIP computing in ``precision`` (a resolved value)."""
    if precision not in DTYPES:
        raise ConfigError(f"Precision '{precision}' is not resolved; valid here: {sorted(DTYPES)}")
    return DTYPES[precision]


def autocast(precision: str, device: Union[str, torch.device]) -> Callable[[], ContextManager]:
    """A context factory for a trained network's forward pass: autocast to ``precision`` (a resolved
    value) over float32 weights; nothing for fp32."""
    if weight_dtype(precision) == torch.float32:
        return contextlib.nullcontext
    device_type = torch.device(device).type
    return lambda: torch.autocast(device_type, dtype=DTYPES[precision])
