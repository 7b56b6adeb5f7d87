"""What ``test.py`` hands back: evaluation in the precision training recorded, predictions CSV in the
dataset's own terms, scatter plot. A real short bf16 training run, then the real ``test.py``."""
from __future__ import annotations

import csv

import pytest
import torch
import yaml

from helpers import REPO, run_script, train_options, write_yaml
from pyiqa.test import choose_precision, recorded_precision
from pyiqa.utils.errors import ConfigError

pytestmark = pytest.mark.slow  # trains or runs installed commands in subprocesses: pytest -m 'not slow' skips it

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def bf16_run(tmp_path_factory, demo_data, tiny_backbone):
    """4 iterations in bf16 with one validation, so net_best.pth exists and records bf16 (one centre
    crop per test image keeps the evaluations cheap)."""
    root = tmp_path_factory.mktemp("outputs")
    opt = train_options("bf16_run", demo_data, tiny_backbone, precision="bf16", train__total_iter=4,
                        train__warmup_iter=-1, val__val_freq=4, network__test_crop="center",
                        logger__print_freq=4, logger__save_latest_freq=4)
    run_script([str(REPO / "train.py"), "-opt", str(write_yaml(root / "train.yml", opt)), "--root",
                str(root)], cwd=root)
    best = root / "experiments" / "bf16_run" / "models" / "net_best.pth"
    test_opt = {"name": "bf16_eval", "num_gpu": 0, "network": opt["network"],
                "datasets": {"test": {**opt["datasets"]["val"]}},
                "path": {"pretrain_network_g": str(best)}}
    return root, write_yaml(root / "test.yml", test_opt), best


def _test(root, yml, *extra):
    proc = run_script([str(REPO / "test.py"), "-opt", str(yml), "--root", str(root), *extra], cwd=root)
    return proc.stdout + proc.stderr


def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_checkpoint_precision_is_used_and_logged_and_outputs_are_friendly(bf16_run, demo_data):
    root, yml, best = bf16_run
    log = _test(root, yml)
    assert f"Precision bf16: the training precision recorded in {best}" in log
    out = root / "results" / "bf16_eval"
    assert yaml.safe_load((out / "bf16_eval_options.yml").read_text())["precision"] == "bf16"
    assert "precision" not in yaml.safe_load(yml.read_text())  # the test YAML was not rewritten

    rows = _rows(out / "predictions_demo.csv")
    assert list(rows[0]) == ["image", "mos", "mos_normalized", "prediction"]
    meta = {r["image_name"]: float(r["mos"]) for r in _rows(demo_data["meta_info_file"])}
    assert len(rows) == 26 and {r["image"] for r in rows} <= set(meta)  # names as in the meta CSV
    for r in rows:
        assert float(r["mos"]) == meta[r["image"]]  # the dataset's 0-100 scale
        assert float(r["mos_normalized"]) == pytest.approx(meta[r["image"]] / 100, abs=1e-6)
    assert max(float(r["mos"]) for r in rows) > 1.0
    assert (out / "scatter_demo.png").stat().st_size > 1000


def test_force_yml_precision_wins(bf16_run):
    root, yml, _ = bf16_run
    log = _test(root, yml, "--force_yml", "precision=fp32", "name=fp32_eval")
    assert "Precision fp32: set by --force_yml" in log
    assert "trained with precision 'bf16' but is evaluated in 'fp32'" in log
    fp32 = [float(r["prediction"]) for r in _rows(root / "results" / "fp32_eval" / "predictions_demo.csv")]
    bf16_csv = root / "results" / "bf16_eval" / "predictions_demo.csv"
    if bf16_csv.exists():  # the two precisions really computed differently
        bf16 = [float(r["prediction"]) for r in _rows(bf16_csv)]
        assert max(abs(a - b) for a, b in zip(fp32, bf16)) > 1e-5


# ---------------------------------------------------------------------------- the rule, without runs
def _opt(ckpt=None, **top):
    from pyiqa.engine.options import parse_experiment
    opt = {"name": "x", "path": {"pretrain_network_g": str(ckpt) if ckpt else None}, **top,
           "datasets": {"test": {"type": "DemoIQADataset"}}, "network": {"type": "UniQA"}}
    return parse_experiment(opt, is_train=False)[0]


def test_precision_rule(tmp_path):
    ours = tmp_path / "ours.pth"
    torch.save({"params": {}, "config": {"name": "t", "precision": "auto"}}, ours)
    release = tmp_path / "release.pth"
    torch.save({"params": {"adapter.fc.0.weight": torch.zeros(1)}}, release)
    default = tmp_path / "default.pth"
    torch.save({"params": {}, "config": {"name": "t"}}, default)
    fp16 = tmp_path / "fp16.pth"
    torch.save({"params": {}, "config": {"precision": "fp16"}}, fp16)

    assert choose_precision(_opt(ours), [], CPU)[0] == "auto"  # resolved by the model, on this device
    assert "'auto' recorded in the checkpoint" in choose_precision(_opt(ours), [], CPU)[1]
    assert choose_precision(_opt(ours, precision="bf16"), [], CPU) == ("bf16", "set in the test options")
    assert choose_precision(_opt(ours, precision="fp32"), ["precision=fp32"], CPU)[1] == "set by --force_yml"
    assert choose_precision(_opt(release), [], CPU)[0] == "fp32"
    assert recorded_precision(str(release))[0] is None
    assert recorded_precision(str(default))[0] == "fp32"  # the trainer's default when none is named
    assert choose_precision(_opt(), [], CPU)[0] == "fp32"
    assert choose_precision(_opt(fp16), [], CPU)[0] == "fp32"  # fp16 needs CUDA: fp32, with a warning
    resolved = tmp_path / "resolved.pth"  # what the trainer writes now: 'auto' made concrete when training
    torch.save({"params": {}, "precision": "bf16", "config": {"precision": "auto"}}, resolved)
    precision, why = choose_precision(_opt(resolved), [], CPU)
    assert precision == "bf16" and why.startswith(f"the training precision recorded in {resolved}")
    bad = tmp_path / "bad.pth"
    torch.save({"params": {}, "config": {"precision": "fp8"}}, bad)
    with pytest.raises(ConfigError, match="bad.pth"):
        choose_precision(_opt(bad), [], CPU)


def test_shipped_demo_test_yaml_evaluates_the_demo_best_checkpoint(demo_data):
    """options/test/UniQA/demo.yml scores what options/train/UniQA/demo.yml writes, on its test set;
    the training YAML validates on images that are neither trained on nor tested."""
    from pyiqa.data import build_dataset
    from pyiqa.engine.options import parse_options
    test_opt, _ = parse_options(REPO / "options/test/UniQA/demo.yml", is_train=False)
    train_opt, _ = parse_options(REPO / "options/train/UniQA/demo.yml", is_train=True)
    assert test_opt.network == train_opt.network
    assert test_opt.datasets["test"] == train_opt.datasets["test"]
    assert test_opt.path.pretrain_network_g == f"./experiments/{train_opt.name}/models/net_best.pth"
    assert test_opt.precision is None  # the checkpoint's recorded precision applies
    images = {}
    for phase in ("train", "val", "test"):  # validation is what writes net_best.pth
        d_opt = {k: v for k, v in train_opt.datasets[phase].items()
                 if k not in ("num_worker_per_gpu", "batch_size_per_gpu", "use_shuffle")}
        ds = build_dataset({**d_opt, "dataroot_target": str(demo_data["root"])}, phase, f"datasets.{phase}")
        images[phase] = {str(ds.table.iat[r, 0]) for r in ds.rows}
    assert len(images["test"]) == 26 and images["val"]
    assert not (images["val"] & images["test"]) and not (images["train"] & (images["val"] | images["test"]))
