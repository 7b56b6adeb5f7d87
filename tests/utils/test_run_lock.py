"""The run lock: a live holder is refused at once; a holder killed a moment ago, whose forked workers still
share the lock, is waited for instead of being reported as a running training process."""
from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import pytest

from pyiqa.utils.errors import PyiqaError
from pyiqa.utils.experiment import ExperimentPaths


def _hold(tmp_path, child_seconds: float) -> subprocess.Popen:
    """A process that takes the lock, forks a child keeping it for ``child_seconds``, then dies."""
    code = textwrap.dedent(f"""
        import os, sys, time
        from pathlib import Path
        from pyiqa.utils.experiment import ExperimentPaths
        ExperimentPaths(Path({str(tmp_path)!r}), "run").lock().acquire()
        if os.fork() == 0:          # like a DataLoader worker: inherits the locked file
            time.sleep({child_seconds})
            os._exit(0)
        print("locked", flush=True)
        time.sleep(0.3 if len(sys.argv) > 1 else 600)
        os._exit(0)                 # the trainer dies; its worker lives on
    """)
    return subprocess.Popen([sys.executable, "-c", code, *(["die"] if child_seconds else [])],
                            stdout=subprocess.PIPE, text=True)


def test_a_dead_holders_workers_are_waited_for_but_a_live_holder_is_refused(tmp_path):
    live = _hold(tmp_path, 0)
    assert live.stdout.readline().strip() == "locked"
    with pytest.raises(PyiqaError, match=rf"in use by a running training process \(PID {live.pid}\)"):
        ExperimentPaths(tmp_path, "run").lock().acquire()
    live.kill()
    live.wait()
    time.sleep(0.1)
    ExperimentPaths(tmp_path, "run").lock().acquire().release()  # its child was the only other holder

    dead = _hold(tmp_path, 2.0)
    assert dead.stdout.readline().strip() == "locked"
    dead.wait()                                                   # the holder is gone, its child is not
    start = time.monotonic()
    lock = ExperimentPaths(tmp_path, "run").lock().acquire()
    assert 0.5 < time.monotonic() - start < 10                    # waited for the child, then got it
    lock.release()
