"""Download layout -> prepare_dataset.py -> the shipped config -> train.py -> test.py, as a user runs
them: KADID-10k's published layout (a fixture) under ./datasets/kadid10k, the real scripts as
subprocesses, the shipped YAMLs unedited except for a tiny random backbone and a short schedule."""
from __future__ import annotations

import csv

import pytest

from helpers import REPO, run_script
from layouts import kadid10k
from pyiqa.data.meta_info import read_split_pickle

pytestmark = pytest.mark.slow  # trains or runs installed commands in subprocesses: pytest -m 'not slow' skips it


def test_prepare_then_train_and_test_with_the_shipped_kadid10k_configs(tmp_path, tiny_backbone):
    layout = kadid10k.write(tmp_path / "datasets" / "kadid10k")
    proc = run_script([str(REPO / "scripts" / "prepare_dataset.py"), "kadid10k", "--root",
                       "datasets/kadid10k", "--few-label", "4"], cwd=tmp_path)
    assert "set dataroot_target: datasets/kadid10k/images" in proc.stdout
    meta = tmp_path / "datasets" / "meta_info"
    assert (meta / "meta_info_KADID10kDataset.csv").is_file()

    short = ["network.backbone=" + str(tiny_backbone), "train.total_epoch=2", "train.scheduler.T_max=2",
             "val.val_freq=2", "logger.print_freq=1", "logger.save_latest_freq=2", "num_gpu=0",
             "datasets.train.num_worker_per_gpu=0", "datasets.val.num_worker_per_gpu=0"]
    proc = run_script([str(REPO / "train.py"), "-opt", str(REPO / "options/train/UniQA/kadid10k.yml"),
                       "--force_yml", *short], cwd=tmp_path)
    log = proc.stdout + proc.stderr
    assert "ratio802_seed123.pkl" in log and "validation runs on the TEST split" in log  # release protocol, said
    run = tmp_path / "experiments"
    best = next(run.glob("*/models/net_best.pth"))

    run_script([str(REPO / "test.py"), "-opt", str(REPO / "options/test/UniQA/kadid10k.yml"), "--force_yml",
                "network.backbone=" + str(tiny_backbone), "num_gpu=0", f"path.pretrain_network_g={best}",
                "datasets.test.num_worker_per_gpu=0"], cwd=tmp_path)
    predictions = next((tmp_path / "results").glob("*/predictions_*.csv"))
    with open(predictions, newline="") as f:
        rows = list(csv.DictReader(f))
    test_rows = read_split_pickle(meta / "kadid10k_ratio802_seed123.pkl", 1)["test"]
    with open(meta / "meta_info_KADID10kDataset.csv", newline="") as f:
        table = list(csv.DictReader(f))
    assert sorted(r["image"] for r in rows) == sorted(table[i]["dist_name"] for i in test_rows)
    for r in rows:  # the MOS column the config names, on the dataset's 1-5 scale
        assert float(r["mos"]) == float(next(t["dmos"] for t in table if t["dist_name"] == r["image"]))
    assert len(rows) < layout.rows
