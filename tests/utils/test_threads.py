"""``configure_threads``: data workers plus torch's intra-op threads fit the cores this process may use."""
import logging
import os

import pytest
import torch

from pyiqa.utils import threads
from pyiqa.utils.errors import ConfigError
from pyiqa.utils.threads import available_cores, choose_threads, configure_threads


@pytest.mark.parametrize("workers, cores, expected", [
    (0, 2, 2),    # no workers: every core computes
    (1, 2, 1),    # the demo on 2 cores: one worker, one compute thread (not 2 + 1)
    (4, 16, 12),
    (2, 2, 1),    # never below one thread
    (8, 2, 1),
    (0, 1, 1),
])
def test_threads_are_the_cores_the_workers_leave(workers, cores, expected):
    assert choose_threads(workers, cores)[0] == expected


def test_explicit_counts_win_requested_over_environment():
    assert choose_threads(1, 2, env_value="3") == (3, "$OMP_NUM_THREADS")
    assert choose_threads(1, 2, requested=4, env_value="3") == (4, "requested")
    assert choose_threads(1, 2, env_value=" ")[0] == 1  # empty: unset


@pytest.mark.parametrize("kwargs, message", [
    ({"requested": 0}, "requested thread count"),
    ({"env_value": "four"}, r"\$OMP_NUM_THREADS"),
    ({"env_value": "2.5"}, r"\$OMP_NUM_THREADS"),
])
def test_bad_counts_are_config_errors(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        choose_threads(1, 2, **kwargs)
    with pytest.raises(ConfigError, match="num_workers"):
        choose_threads(-1, 2)


def test_available_cores_is_the_affinity():
    expected = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    assert available_cores() == expected


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


def test_configure_sets_torch_and_logs_once(monkeypatch):
    before, level = torch.get_num_threads(), threads.logger.level
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.setattr(threads, "available_cores", lambda: 3)
    monkeypatch.setattr(threads, "_last_logged", None)
    # a handler on the module's own logger: independent of how an earlier test configured logging
    collect = _Collect()
    threads.logger.addHandler(collect)
    threads.logger.setLevel(logging.INFO)
    try:
        assert configure_threads(1) == 2
        assert torch.get_num_threads() == 2
        assert configure_threads(1) == 2
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        assert configure_threads(1) == 1
        assert collect.lines == [
            "torch uses 2 intra-op thread(s) (3 core(s) available, 1 DataLoader worker(s))",
            "torch uses 1 intra-op thread(s) ($OMP_NUM_THREADS)"]
        configure_threads(2, requested=3)
        assert "more busy threads than cores" in collect.lines[-1]
    finally:
        threads.logger.removeHandler(collect)
        threads.logger.setLevel(level)
        torch.set_num_threads(before)
