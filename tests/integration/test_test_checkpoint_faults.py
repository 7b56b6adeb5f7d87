"""``test.py`` with a checkpoint that cannot be scored as the YAML says: trained on other prompts
(refused, naming both), or holding NaN tensors (the predictions CSV is written, the metrics are
reported as undefined instead of a traceback from the correlation). A real 2-iteration training run."""
from __future__ import annotations

import csv

import pytest
import torch

from helpers import REPO, run_script, train_options, write_yaml

pytestmark = pytest.mark.slow  # trains or runs installed commands in subprocesses: pytest -m 'not slow' skips it

GROUPS = ["quality", "blur", "noise", "lowhigh"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, demo_data, tiny_backbone):
    root = tmp_path_factory.mktemp("ckpt_faults")
    opt = train_options("four_groups", demo_data, tiny_backbone, train__total_iter=2, train__warmup_iter=-1,
                        logger__print_freq=2, logger__save_latest_freq=2)
    opt["network"] = {"type": "UniQA", "backbone": str(tiny_backbone), "prompts": GROUPS, "test_crop": "center",
                      "embedding_dim": 32}
    test_set = opt["datasets"].pop("val")  # 26 images: the test split
    del opt["val"]
    run_script([str(REPO / "train.py"), "-opt", str(write_yaml(root / "train.yml", opt)), "--root", str(root)],
               cwd=root)
    return root, {**opt, "test_set": test_set}, root / "experiments" / "four_groups" / "models" / "net_latest.pth"


def _test_options(root, opt, ckpt, name, **network):
    test_opt = {"name": name, "num_gpu": 0, "network": {**opt["network"], **network},
                "datasets": {"test": opt["test_set"]}, "path": {"pretrain_network_g": str(ckpt)}}
    return write_yaml(root / f"{name}.yml", test_opt)


def test_checkpoint_of_other_prompts_is_refused_naming_both(trained):
    root, opt, ckpt = trained
    yml = _test_options(root, opt, ckpt, "one_group", prompts=["quality"])
    proc = run_script([str(REPO / "test.py"), "-opt", str(yml), "--root", str(root)], cwd=root, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert f"The checkpoint {ckpt} was trained with network.prompts = {GROUPS!r}" in proc.stderr
    assert "build network.prompts = ['quality']" in proc.stderr
    assert not (root / "results" / "one_group").exists()


def test_nan_checkpoint_writes_predictions_and_reports_metrics_undefined(trained):
    root, opt, ckpt = trained
    state = torch.load(ckpt, weights_only=True)
    state["params"] = {k: torch.full_like(v, float("nan")) for k, v in state["params"].items()}
    nan_ckpt = root / "nan.pth"
    torch.save(state, nan_ckpt)
    yml = _test_options(root, opt, nan_ckpt, "nan_eval")
    proc = run_script([str(REPO / "test.py"), "-opt", str(yml), "--root", str(root)], cwd=root)
    log = proc.stdout + proc.stderr
    assert "predictions are not finite" in log and "every metric is UNDEFINED (nan)" in log
    assert "SRCC: nan" in log and "Traceback" not in log
    with open(root / "results" / "nan_eval" / "predictions_demo.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 26 and all(r["prediction"] == "nan" for r in rows)
