"""No run destroys another, and no fault loses the last good checkpoint (the real train.py / test.py)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from helpers import REPO, run_script, train_options, write_yaml

pytestmark = pytest.mark.slow  # trains or runs installed commands in subprocesses: pytest -m 'not slow' skips it

TRAIN = str(REPO / "train.py")


def start(yml, root, *extra):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, TRAIN, "-opt", str(yml), "--root", str(root), *extra], cwd=root,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(predicate, timeout=120.0):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_second_live_run_of_a_name_is_refused_and_a_killed_runs_lock_is_taken_over(tmp_path, demo_data,
                                                                                  tiny_backbone):
    opt = train_options("same", demo_data, tiny_backbone, train__total_iter=100_000,
                        logger__save_latest_freq=5)
    yml = write_yaml(tmp_path / "same.yml", opt)
    first = start(yml, tmp_path)
    exp = tmp_path / "experiments" / "same"
    try:
        assert wait_for(lambda: (exp / "training_states").is_dir() and any((exp / "training_states").iterdir())), \
            first.stderr.read() if first.poll() is not None else "first run did not save"
        second = run_script([TRAIN, "-opt", str(yml), "--root", str(tmp_path)], cwd=tmp_path, check=False)
        assert second.returncode == 2
        assert f"in use by a running training process (PID {first.pid})" in second.stderr
        assert str(exp) in second.stderr and "Traceback" not in second.stderr
        assert second.stderr.count("error:") == 1 and "ERROR" not in second.stdout
        assert not [p for p in exp.parent.iterdir() if "archived" in p.name]  # the live folder stays put
        assert first.poll() is None  # and the first run goes on
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    # the killed run's lock is stale: a new run takes over, archiving the old folder
    opt["train"]["total_iter"] = 2
    third = run_script([TRAIN, "-opt", str(write_yaml(yml, opt)), "--root", str(tmp_path)], cwd=tmp_path)
    assert "Previous run moved to" in third.stdout
    assert len([p for p in exp.parent.iterdir() if p.name.startswith("same_archived_")]) == 1


def test_name_must_be_one_folder_name(tmp_path, demo_data, tiny_backbone):
    from pyiqa.engine.options import validate_options
    from pyiqa.utils.errors import ConfigError
    for name in ("", "a/b", ".", ".."):
        with pytest.raises(ConfigError, match="'name' must be"):
            validate_options(train_options(name, demo_data, tiny_backbone), is_train=True)
    # through the real entry point: one message, and nothing renamed or written outside experiments/
    (tmp_path / "experiments" / "other").mkdir(parents=True)
    yml = write_yaml(tmp_path / "bad.yml", train_options("../escape", demo_data, tiny_backbone))
    proc = run_script([TRAIN, "-opt", str(yml), "--root", str(tmp_path)], cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "'name' must be" in proc.stderr and "Traceback" not in proc.stderr
    assert sorted(p.name for p in tmp_path.rglob("*") if p.suffix != ".yml") == ["experiments", "other"]


def test_config_or_data_error_leaves_no_folder(tmp_path, demo_data, tiny_backbone):
    opt = train_options("broken", demo_data, tiny_backbone)
    opt["datasets"]["val"]["meta_info_file"] = str(tmp_path / "missing.csv")
    yml = write_yaml(tmp_path / "broken.yml", opt)
    proc = run_script([TRAIN, "-opt", str(yml), "--root", str(tmp_path)], cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "missing.csv" in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "experiments").exists()


def test_resume_cleans_tmp_skips_unreadable_newest_state_and_refuses_other_network(tmp_path, demo_data,
                                                                                  tiny_backbone):
    opt = train_options("faults", demo_data, tiny_backbone, train__total_iter=8, logger__save_latest_freq=4)
    yml = write_yaml(tmp_path / "faults.yml", opt)
    run_script([TRAIN, "-opt", str(yml), "--root", str(tmp_path)], cwd=tmp_path)
    states = tmp_path / "experiments" / "faults" / "training_states"
    assert sorted(p.name for p in states.iterdir()) == ["4.state", "8.state"]
    data = (states / "8.state").read_bytes()
    (states / "8.state").write_bytes(data[: len(data) // 2])  # as if the disk filled up mid-write
    (states / ".12.state.x1y2.tmp").write_bytes(b"half a state")  # a save killed mid-write
    opt["train"]["total_iter"] = 10
    write_yaml(yml, opt)
    proc = run_script([TRAIN, "-opt", str(yml), "--root", str(tmp_path), "--auto_resume"], cwd=tmp_path)
    assert "Skipping unreadable training state" in proc.stdout and "8.state" in proc.stdout
    assert "at epoch 0, step 4" in proc.stdout and "Removed 1 unfinished temporary file" in proc.stdout
    assert not list(states.glob("*.tmp"))
    # a state written for another network is refused with both values
    opt["network"]["embedding_dim"] = 16
    proc = run_script([TRAIN, "-opt", str(write_yaml(yml, opt)), "--root", str(tmp_path), "--auto_resume"],
                      cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "network.embedding_dim: state 32, config 16" in proc.stderr


def test_disk_full_is_one_clear_error_and_the_last_state_stays_loadable(tmp_path, demo_data, tiny_backbone):
    opt = train_options("full", demo_data, tiny_backbone, train__total_iter=8, logger__save_latest_freq=4)
    yml = write_yaml(tmp_path / "full.yml", opt)
    run_script([TRAIN, "-opt", str(yml), "--root", str(tmp_path)], cwd=tmp_path)
    opt["train"]["total_iter"] = 12
    write_yaml(yml, opt)
    states = tmp_path / "experiments" / "full" / "training_states"
    size = (states / "8.state").stat().st_size // 2
    # no file may grow past half a training state from now on (a disk that fills up); SIGXFSZ is
    # ignored so that the write fails with an error instead of killing the process
    limit = ("import resource, runpy, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
             f"resource.setrlimit(resource.RLIMIT_FSIZE, ({size}, {size})); sys.argv = sys.argv[1:]; "
             "runpy.run_path(sys.argv[0], run_name='__main__')")
    proc = run_script(["-c", limit, TRAIN, "-opt", str(yml), "--root", str(tmp_path), "--auto_resume"],
                      cwd=tmp_path, check=False)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and proc.stderr.count("error:") == 1
    assert "Cannot write" in proc.stderr and "last complete training state is" in proc.stderr
    newest = max(states.glob("*.state"), key=lambda p: int(p.stem))
    assert torch.load(newest, weights_only=True)["iter"] == 8
    assert not list(states.glob("*.tmp"))


def test_test_script_archives_earlier_results(tmp_path, demo_data, tiny_backbone):
    opt = train_options("evals", demo_data, tiny_backbone)
    test_opt = {"name": "evals", "num_gpu": 0, "network": opt["network"],
                "datasets": {"test": dict(opt["datasets"]["val"])}}
    yml = write_yaml(tmp_path / "evals.yml", test_opt)
    for _ in range(2):
        run_script([str(REPO / "test.py"), "-opt", str(yml), "--root", str(tmp_path)], cwd=tmp_path)
    folders = sorted(p.name for p in (tmp_path / "results").iterdir())
    assert folders[0] == "evals" and folders[1].startswith("evals_archived_") and len(folders) == 2
    for folder in folders:
        assert (tmp_path / "results" / folder / "predictions_demo.csv").is_file()
        assert len(list((tmp_path / "results" / folder).glob("test_evals.log"))) == 1
