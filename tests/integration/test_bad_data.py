"""Faults met during training: unreadable images, a loss that blows up, a config without validation."""
from __future__ import annotations

import re
import shutil

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from helpers import REPO, run_script, train_options, write_yaml

pytestmark = pytest.mark.slow  # trains or runs installed commands in subprocesses: pytest -m 'not slow' skips it

TRAIN = str(REPO / "train.py")


@pytest.fixture
def damaged_demo(tmp_path, demo_data):
    """A copy of the demo data whose first training image is a 0-byte file."""
    root = tmp_path / "demo"
    shutil.copytree(demo_data["root"], root)
    demo = {**demo_data, "root": root, "meta_info_file": root / demo_data["meta_info_file"].name,
            "split_file": root / demo_data["split_file"].name}
    from pyiqa.data import build_dataset
    opt = train_options("x", demo, "random-tiny")["datasets"]["train"]
    train = build_dataset(opt, "train", "datasets.train")
    broken = train.image_path(train.rows[0])
    broken.write_bytes(b"")
    return demo, broken


def test_unreadable_training_image_is_skipped_then_stops_the_run_past_the_limit(tmp_path, damaged_demo,
                                                                               tiny_backbone):
    demo, broken = damaged_demo
    opt = train_options("skips", demo, tiny_backbone, train__total_iter=26, val__val_freq=1000)
    proc = run_script([TRAIN, "-opt", str(write_yaml(tmp_path / "a.yml", opt)), "--root", str(tmp_path)],
                      cwd=tmp_path)
    assert proc.stdout.count("Skipped unreadable image") == 1 and broken.name in proc.stdout
    assert "End of training: 26 iterations" in proc.stdout
    opt["name"] = "stops"
    opt["datasets"]["train"]["max_failed_fraction"] = 0.0
    proc = run_script([TRAIN, "-opt", str(write_yaml(tmp_path / "b.yml", opt)), "--root", str(tmp_path)],
                      cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "1 of 104 training images are missing or unreadable" in proc.stderr
    report = tmp_path / "experiments" / "stops" / "failed_images.txt"
    assert str(broken) in report.read_text()


def test_non_finite_loss_stops_with_iteration_lr_and_last_state(tmp_path, demo_data, tiny_backbone):
    opt = train_options("blowup", demo_data, tiny_backbone, train__total_iter=50, val__val_freq=1000,
                        logger__save_latest_freq=1, train__warmup_iter=-1)
    opt["train"]["optim"]["lr"] = 1e30  # finite, but the weights overflow after the first update
    proc = run_script([TRAIN, "-opt", str(write_yaml(tmp_path / "a.yml", opt)), "--root", str(tmp_path)],
                      cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert re.search(r"The loss is not finite at iteration 2 \(epoch 0, learning rate 9\.9\d+e\+29\)", proc.stderr)
    assert "last good training state is" in proc.stderr and "training_states/1.state" in proc.stderr


def test_training_without_a_val_section(tmp_path, demo_data, tiny_backbone):
    opt = train_options("noval", demo_data, tiny_backbone, train__total_iter=4)
    del opt["datasets"]["val"]
    del opt["val"]
    opt["datasets"]["test"] = dict(train_options("x", demo_data, tiny_backbone)["datasets"]["val"])
    proc = run_script([TRAIN, "-opt", str(write_yaml(tmp_path / "a.yml", opt)), "--root", str(tmp_path)],
                      cwd=tmp_path)
    assert "training without validation" in proc.stdout and "Test test (final network, 26 images)" in proc.stdout
    exp = tmp_path / "experiments" / "noval"
    assert (exp / "models" / "net_latest.pth").is_file() and not (exp / "models" / "net_best.pth").exists()
    acc = EventAccumulator(str(exp / "tb_logger"))
    acc.Reload()
    assert {"test/test/srcc", "test/test/krcc"} <= set(acc.Tags()["scalars"])
