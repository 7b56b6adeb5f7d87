"""How many intra-op threads torch may use next to the DataLoader workers.

torch starts one intra-op thread per core it sees, and every DataLoader worker process keeps a core
busy decoding and augmenting. Together they oversubscribe the cores this process may use; OpenMP
threads then spin waiting for each other, and on a small shared machine a step gets several times
slower (the demo on 2 cores with other load: 0.43 s/iteration by default, 0.06 with one thread).
:func:`configure_threads` gives torch the cores the workers leave free, never fewer than one.
"""
from __future__ import annotations

import logging
import os
from typing import Optional, Tuple

from .errors import ConfigError

logger = logging.getLogger(__name__)

ENV_VAR = "OMP_NUM_THREADS"
#: Most DataLoader worker processes one loader may start: each is a process with its own copy of the
#: dataset, so 10**6 would fork until the machine stops; the largest machines have a few hundred cores.
MAX_LOADER_WORKERS = 256
_last_logged: Optional[Tuple[int, str]] = None


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity, e.g. under taskset or a container's
    cpuset), falling back to the machine's count where affinity is not available (macOS, Windows)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def _positive_int(value: object, what: str) -> int:
    try:
        number = int(str(value).strip())
    except ValueError:
        number = 0
    if number < 1:
        raise ConfigError(f"{what} must be a positive integer (threads), got {value!r}; e.g. 1, or "
                          f"leave it unset to use the cores the data workers leave free")
    return number


def choose_threads(num_workers: int, cores: int, requested: Optional[int] = None,
                   env_value: Optional[str] = None) -> Tuple[int, str]:
    """(intra-op threads, why): ``requested`` wins, then ``$OMP_NUM_THREADS`` (``env_value``), else
    the cores left after one per DataLoader worker, at least 1.

    Raises:
        ConfigError: ``requested`` or ``env_value`` is not a positive integer, or ``num_workers`` < 0.
    """
    if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
        raise ConfigError(f"num_workers must be an integer >= 0 (DataLoader workers), got {num_workers!r}")
    if requested is not None:
        return _positive_int(requested, "The requested thread count"), "requested"
    if env_value is not None and env_value.strip():
        return _positive_int(env_value, f"${ENV_VAR}"), f"${ENV_VAR}"
    threads = max(1, cores - num_workers)
    return threads, f"{cores} core(s) available, {num_workers} DataLoader worker(s)"


def configure_threads(num_workers: int, requested: Optional[int] = None) -> int:
    """Set torch's intra-op threads so data workers plus compute fit the cores; return the count.

    Args:
        num_workers: DataLoader worker processes running beside this one (each keeps about one core
            busy; torch gives every worker a single thread itself).
        requested: an explicit thread count (a flag or option); wins over ``$OMP_NUM_THREADS``, which
            wins over the automatic choice.

    The choice is logged once (again only when it changes).
    """
    import torch  # here, so importing this module stays light

    global _last_logged
    cores = available_cores()
    threads, why = choose_threads(num_workers, cores, requested, os.environ.get(ENV_VAR))
    torch.set_num_threads(threads)
    if (threads, why) != _last_logged:
        _last_logged = (threads, why)
        if threads + num_workers > cores:
            logger.warning("torch uses %d intra-op thread(s) (%s) beside %d DataLoader worker(s) on %d "
                           "core(s): more busy threads than cores, which can be several times slower; "
                           "lower num_worker_per_gpu or the thread count", threads, why, num_workers, cores)
        else:
            logger.info("torch uses %d intra-op thread(s) (%s)", threads, why)
    return threads
