"""Which weight dtype is fast for the frozen backbone on this hardware.

bf16 *weights* are 3-4x faster than fp32 on CPUs with AMX or AVX512-BF16, but several times slower on
CPUs without them (e.g. AVX2-only machines), so ``precision: auto`` checks instead of guessing.
"""
from __future__ import annotations

import functools
import logging
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@functools.lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """True when the CPU advertises AMX-BF16 or AVX512-BF16 (Linux /proc/cpuinfo)."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_precision(precision: str, device: torch.device) -> str:
    """'auto' -> bf16 on CUDA with bf16 support or fast-bf16 CPUs, else fp32. Warns on slow choices."""
    if precision == "auto":
        if device.type == "cuda":
            return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
        return "bf16" if cpu_has_fast_bf16() else "fp32"
    if precision == "bf16" and device.type == "cpu" and not cpu_has_fast_bf16():
        logger.warning("precision: bf16 on a CPU without AMX/AVX512-BF16 is several times SLOWER than "
                       "fp32; use precision: auto or fp32")
    return precision
