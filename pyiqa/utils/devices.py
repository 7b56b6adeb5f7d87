"""One place that turns a user's device string into a ``torch.device`` the scoring code can use.

torch parses ``'gpu9'`` with a RuntimeError, and accepts ``'cuda'`` on a machine without CUDA only to fail
later, deep in ``.to()``; both become one ConfigError here, naming the option, the value and what is
expected, before any weights are read.
"""
from __future__ import annotations

from typing import Optional, Union

import torch

from .errors import ConfigError

EXPECTED = "expected cpu, cuda or cuda:N"


def resolve_device(device: Optional[Union[str, int, torch.device]], where: str = "device") -> torch.device:
    """``device`` as a usable ``torch.device``; None: CUDA when available, else the CPU.

    Args:
        device: 'cpu', 'cuda', 'cuda:1', a CUDA index or a ``torch.device`` ('mps' where present).
        where: the option's name in messages ('--device' on a command line).

    Raises:
        ConfigError: not a device string, a kind of device this code does not run on, CUDA asked for on a
            machine without it, or a CUDA index beyond the devices present.
    """
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    use_cpu = f"use {where} cpu" if where.startswith("--") else f"use {where}='cpu'"
    if isinstance(device, bool) or not isinstance(device, (str, int, torch.device)):
        raise ConfigError(f"{where} {device!r} is not a device; {EXPECTED}")
    try:
        dev = device if isinstance(device, torch.device) else torch.device(
            device.strip() if isinstance(device, str) else device)
    except (RuntimeError, ValueError, TypeError) as err:
        raise ConfigError(f"{where} '{device}' is not a device; {EXPECTED}") from err
    if dev.type == "cpu":
        return dev
    if dev.type == "mps":
        if not torch.backends.mps.is_available():
            raise ConfigError(f"{where} '{device}': MPS is not available on this machine; {use_cpu}")
        return dev
    if dev.type != "cuda":
        raise ConfigError(f"{where} '{device}': {dev.type} devices are not supported; {EXPECTED}")
    if not torch.cuda.is_available():
        raise ConfigError(f"{where} '{device}': CUDA is not available on this machine "
                          f"(torch.cuda.is_available() is False); {use_cpu}")
    count = torch.cuda.device_count()
    if dev.index is not None and dev.index >= count:
        raise ConfigError(f"{where} '{device}': this machine has {count} CUDA device(s); expected cuda or "
                          f"cuda:N with N from 0 to {count - 1}")
    return dev
