"""``train.feature_cache: true`` end to end: the log says which loop ran, results.json records it, a second
run reuses the cache, a run killed mid-way resumes bit-identically, and two DDP ranks read one cache."""
from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from pyiqa.train import main
from helpers import REPO, run_script, train_options, write_yaml

pytestmark = pytest.mark.slow  # trains or runs installed commands in subprocesses: pytest -m 'not slow' skips it


TOTAL = 160  # cached steps take milliseconds: long enough to be killed mid-run


def _losses(exp):
    acc = EventAccumulator(str(exp / "tb_logger"), size_guidance={"scalars": 0})
    acc.Reload()
    return {e.step: e.value for e in acc.Scalars("losses/l_mos")}


def _cached(name, demo, backbone, cache_dir, **changes):
    options = dict(train__feature_cache=True, train__views_per_image=2, train__feature_cache_dir=str(cache_dir),
                   precision="fp32", logger__print_freq=1)
    return train_options(name, demo, backbone, **{**options, **changes})


def test_cached_run_reuses_its_cache_and_a_sigkill_resumes_bit_identically(tmp_path, demo_data, tiny_backbone):
    """README's promise for the cached loop too: killed (SIGKILL) at a random point across epochs, it
    resumes with --auto_resume and logs bit-identical losses; the second and third runs reuse the cache."""
    cache = tmp_path / "cache"
    straight = _cached("straight", demo_data, tiny_backbone, cache, train__total_iter=TOTAL, val__val_freq=50,
                       logger__save_latest_freq=2)
    log = run_script([str(REPO / "train.py"), "-opt", str(write_yaml(tmp_path / "a.yml", straight)), "--root",
                      str(tmp_path)], cwd=tmp_path).stdout  # a process of its own, as the killed one
    assert "Training loop: cached features (2 fixed views per training image" in log
    # the 80/20 split has no val part: validation runs on the 26 test images
    assert "building 104 of 104 images' demo views" in log and "building 26 of 26 images' demo crops" in log
    exp = tmp_path / "experiments" / "straight"
    results = json.loads((exp / "results.json").read_text())
    assert results["feature_cache"] is True and results["iterations"] == TOTAL and results["cache_seconds"] > 0
    expected = _losses(exp)
    assert sorted(expected) == list(range(1, TOTAL + 1))

    straight["name"] = "killed"
    yml = write_yaml(tmp_path / "b.yml", straight)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "2"}  # as run_script: same float sums
    proc = subprocess.Popen([sys.executable, str(REPO / "train.py"), "-opt", str(yml), "--root", str(tmp_path)],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    states = tmp_path / "experiments" / "killed" / "training_states"
    kill_after = random.Random().choice(range(30, 120, 2))  # 26 steps an epoch: a random point, mid-run
    deadline = time.time() + 300
    while time.time() < deadline and not (states / f"{kill_after}.state").exists() and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate()
    assert "building" not in out and "all 104 images' demo views" in out  # the cache is reused
    saved = max(int(p.stem) for p in states.glob("*.state"))
    assert saved < TOTAL, "the run finished before it was killed"
    resumed_out = run_script([str(REPO / "train.py"), "-opt", str(yml), "--root", str(tmp_path), "--auto_resume"],
                             cwd=tmp_path).stdout
    assert f"step {saved}" in resumed_out and "building" not in resumed_out
    resumed = _losses(tmp_path / "experiments" / "killed")
    later = [s for s in expected if s > saved]
    assert later and [resumed[s] for s in later] == [expected[s] for s in later]    # bit for bit


def test_torchrun_two_ranks_share_one_cache(tmp_path, demo_data, tiny_backbone):
    """Both ranks build their share and read the same files: the first global-batch loss of 2 ranks x 4
    equals one process's with a batch of 8 (the same items, the same cached views)."""
    cache = tmp_path / "cache"
    ddp = _cached("ddp", demo_data, tiny_backbone, cache, train__total_iter=2, val__val_freq=2)
    proc = run_script(["-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29631",
                       str(REPO / "train.py"), "-opt", str(write_yaml(tmp_path / "ddp.yml", ddp)), "--root",
                       str(tmp_path), "--launcher", "pytorch"], cwd=tmp_path, timeout=300)
    assert "world size 2" in proc.stdout and "Training loop: cached features" in proc.stdout
    shards = sorted(p for p in cache.glob("demo_views_*/shard-*.json"))
    rows = sorted(r for p in shards for r in json.loads(p.read_text())["rows"])
    assert len(rows) == len(set(rows)) == 104                   # every training image once, no shard twice
    single = _cached("single", demo_data, tiny_backbone, cache, train__total_iter=1, val__val_freq=2)
    single["datasets"]["train"]["batch_size_per_gpu"] = 8
    main(["-opt", str(write_yaml(tmp_path / "one.yml", single)), "--root", str(tmp_path)])
    assert _losses(tmp_path / "experiments" / "ddp")[1] == pytest.approx(
        _losses(tmp_path / "experiments" / "single")[1], rel=1e-5)


def test_cache_options_are_checked_before_anything_runs(tmp_path, demo_data, tiny_backbone):
    from pyiqa.utils.errors import ConfigError
    bad = train_options("bad", demo_data, tiny_backbone, train__views_per_image=4)
    with pytest.raises(ConfigError, match=r"'train.views_per_image' only applies with 'train.feature_cache: true'"):
        main(["-opt", str(write_yaml(tmp_path / "a.yml", bad)), "--root", str(tmp_path)])
    bad = _cached("bad", demo_data, tiny_backbone, tmp_path / "c", network__test_crop="random10-global")
    with pytest.raises(ConfigError, match=r"'network.test_crop: random10-global' draws new crops"):
        main(["-opt", str(write_yaml(tmp_path / "b.yml", bad)), "--root", str(tmp_path)])
    bad = _cached("bad", demo_data, tiny_backbone, tmp_path / "c", train__views_per_image=0)
    with pytest.raises(ConfigError, match=r"train.views_per_image"):
        main(["-opt", str(write_yaml(tmp_path / "c.yml", bad)), "--root", str(tmp_path)])
    assert not (tmp_path / "experiments").exists() and not (tmp_path / "c").exists()


def test_cache_folder_that_is_a_file_stops_the_run_with_one_error(tmp_path, demo_data, tiny_backbone):
    """Before: NotADirectoryError traceback from the cache build."""
    from pyiqa.utils.errors import DataError
    blocker = tmp_path / "cache"
    blocker.write_text("not a folder")
    bad = _cached("blocked", demo_data, tiny_backbone, blocker, train__total_iter=2)
    with pytest.raises(DataError, match=rf"Feature cache folder '{blocker}' \(train.feature_cache_dir\) is a file"):
        main(["-opt", str(write_yaml(tmp_path / "a.yml", bad)), "--root", str(tmp_path)])
    assert blocker.read_text() == "not a folder"


def test_compiled_step_trains_as_the_eager_one(tmp_path, demo_data, tiny_backbone):
    """``train.compile: true`` (torch.compile, inductor on this CPU) runs the same steps: the same losses
    within float32 rounding of fused kernels, and a network that scores alike."""
    import torch
    from torch._dynamo.utils import counters
    cache = tmp_path / "cache"
    runs = {}
    counters.clear()
    for name, setting in (("eager", False), ("compiled", True)):
        opt = _cached(name, demo_data, tiny_backbone, cache, train__total_iter=30, val__val_freq=30,
                      train__compile=setting, train__metric_loss_opt={"type": "PLCCLoss", "loss_weight": 0.5})
        main(["-opt", str(write_yaml(tmp_path / f"{name}.yml", opt)), "--root", str(tmp_path)])
        runs[name] = tmp_path / "experiments" / name
        assert bool(counters["stats"]["unique_graphs"]) == setting  # dynamo traced the step: really compiled
    eager, compiled = _losses(runs["eager"]), _losses(runs["compiled"])
    assert sorted(compiled) == list(range(1, 31))
    assert [compiled[s] for s in range(1, 31)] == pytest.approx([eager[s] for s in range(1, 31)], rel=1e-4, abs=1e-6)
    a, b = (torch.load(runs[n] / "models" / "net_latest.pth", weights_only=True)["params"] for n in runs)
    for key in a:
        assert torch.allclose(a[key], b[key], rtol=1e-4, atol=1e-6), key
    best = {n: json.loads((runs[n] / "results.json").read_text())["best"]["val"]["metrics"] for n in runs}
    assert best["compiled"] == pytest.approx(best["eager"], abs=1e-3)


def test_compile_options_are_checked_before_anything_runs(tmp_path, demo_data, tiny_backbone, monkeypatch):
    from pyiqa.utils.errors import ConfigError
    bad = _cached("bad", demo_data, tiny_backbone, tmp_path / "c", train__compile="fast")
    with pytest.raises(ConfigError, match=r"'train.compile' must be true, false or a torch.compile mode \(default, "
                                          r"reduce-overhead.*got 'fast'"):
        main(["-opt", str(write_yaml(tmp_path / "a.yml", bad)), "--root", str(tmp_path)])
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-g++"))  # the environment's edge: no C++ compiler
    bad = _cached("bad", demo_data, tiny_backbone, tmp_path / "c", train__compile=True)
    with pytest.raises(ConfigError, match=r"'train.compile: True' compiles the training step with a C\+\+ compiler "
                                          r"on CPUs, and none was found \(.*no-such-g\+\+"):
        main(["-opt", str(write_yaml(tmp_path / "b.yml", bad)), "--root", str(tmp_path)])
    assert not (tmp_path / "experiments").exists() and not (tmp_path / "c").exists()
