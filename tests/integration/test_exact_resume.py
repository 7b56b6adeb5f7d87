"""README's promise: a run killed (SIGKILL) at a random point mid-epoch, with the shipped loader setting of
DataLoader workers, resumes with --auto_resume and logs bit-identical losses from then on."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from helpers import REPO, run_script, train_options, write_yaml

pytestmark = pytest.mark.slow  # trains or runs installed commands in subprocesses: pytest -m 'not slow' skips it

TOTAL = 32
PER_EPOCH = 26  # 104 training images / batch 4: a kill before step 26 resumes across an epoch end


def losses(exp):
    acc = EventAccumulator(str(exp / "tb_logger"), size_guidance={"scalars": 0})
    acc.Reload()
    return {e.step: e.value for e in acc.Scalars("losses/l_mos")}


def test_sigkill_mid_epoch_with_two_workers_resumes_bit_identically(tmp_path, demo_data, tiny_backbone):
    opt = train_options("straight", demo_data, tiny_backbone, train__total_iter=TOTAL, val__val_freq=10_000,
                        logger__save_latest_freq=2, logger__print_freq=1)
    for section in ("train", "val"):
        opt["datasets"][section]["num_worker_per_gpu"] = 2
    run_script([str(REPO / "train.py"), "-opt", str(write_yaml(tmp_path / "a.yml", opt)), "--root",
                str(tmp_path)], cwd=tmp_path)
    expected = losses(tmp_path / "experiments" / "straight")
    assert sorted(expected) == list(range(1, TOTAL + 1))

    opt["name"] = "killed"
    yml = write_yaml(tmp_path / "b.yml", opt)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "2"}  # as run_script: same float sums
    proc = subprocess.Popen([sys.executable, str(REPO / "train.py"), "-opt", str(yml), "--root", str(tmp_path)],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    states = tmp_path / "experiments" / "killed" / "training_states"
    # a random point mid-epoch: after a random state, a random moment (a few steps at most: CI machines
    # train 32 steps in 0.8 s, and a kill after the last state would find nothing left to resume)
    kill_after = random.Random().choice(range(6, 16, 2))
    deadline = time.time() + 300
    while time.time() < deadline and not (states / f"{kill_after}.state").exists() and proc.poll() is None:
        time.sleep(0.01)
    time.sleep(random.random() * 0.1)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = max(int(p.stem) for p in states.glob("*.state"))
    assert saved < TOTAL, "the run finished before it was killed"
    out = run_script([str(REPO / "train.py"), "-opt", str(yml), "--root", str(tmp_path), "--auto_resume"],
                     cwd=tmp_path)
    # a fast machine may pass the epoch end before the kill lands: the logged epoch is the saved step's
    epoch = (saved - 1) // PER_EPOCH
    assert f"at epoch {epoch}, step {saved}" in out.stdout
    resumed = losses(tmp_path / "experiments" / "killed")
    later = [s for s in expected if s > saved]
    assert later and [resumed[s] for s in later] == [expected[s] for s in later]  # float32, bit for bit
    a = torch.load(tmp_path / "experiments" / "straight" / "models" / "net_latest.pth", weights_only=True)
    b = torch.load(tmp_path / "experiments" / "killed" / "models" / "net_latest.pth", weights_only=True)
    assert all(torch.equal(a["params"][k], b["params"][k]) for k in a["params"])
