"""The real ``train.py`` / ``test.py`` as subprocesses on the demo data with a tiny CLIP file."""
from __future__ import annotations

import csv
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from helpers import REPO, run_script, train_options, write_yaml
from pyiqa.utils.errors import ConfigError, PyiqaError

pytestmark = pytest.mark.slow  # trains or runs installed commands in subprocesses: pytest -m 'not slow' skips it

TRAINABLE_KEYS = {"adapter.fc.0.weight", "adapter.fc.2.weight", "score_level"}


def load(path):
    return torch.load(path, map_location="cpu", weights_only=False)


@pytest.fixture(scope="module")
def trained(tmp_path_factory, demo_data, tiny_backbone):
    """One 12-iteration run (validation every 6, latest checkpoint every 4) shared by several tests."""
    root = tmp_path_factory.mktemp("run")
    opt = train_options("tiny_run", demo_data, tiny_backbone)
    yml = write_yaml(root / "tiny_run.yml", opt)
    proc = run_script([str(REPO / "train.py"), "-opt", str(yml), "--root", str(root)], cwd=root)
    return root, root / "experiments" / "tiny_run", proc


def test_run_writes_checkpoints_with_only_trainable_tensors(trained):
    _, exp, proc = trained
    assert "Ignoring legacy option 'logger.wandb'" in proc.stdout
    assert "Ignoring legacy option 'datasets.train.prefetch_mode'" in proc.stdout
    assert "RANDOMLY INITIALISED" not in proc.stdout  # a real backbone file was given
    for name in ("net_latest.pth", "net_best.pth"):
        ckpt = load(exp / "models" / name)
        assert set(ckpt["params"]) == TRAINABLE_KEYS
        assert ckpt["arch"]["type"] == "UniQA_Adapter_Patchtest"
        assert ckpt["config"]["name"] == "tiny_run"
    assert load(exp / "models" / "net_latest.pth")["iter"] == 12
    states = sorted(p.name for p in (exp / "training_states").glob("*.state"))
    assert states == ["12.state", "8.state"]  # the two newest are kept
    assert (exp / "tiny_run_options.yml").is_file()
    assert list(exp.glob("train_tiny_run_*.log"))


def test_tensorboard_events_hold_losses_lr_and_metrics(trained):
    _, exp, _ = trained
    acc = EventAccumulator(str(exp / "tb_logger"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"losses/l_mos", "lr", "metrics/val/srcc", "metrics/val/plcc"} <= tags
    assert [e.step for e in acc.Scalars("metrics/val/srcc")] == [6, 12]
    lrs = {e.step: e.value for e in acc.Scalars("lr")}
    # the lr used by step 2: cosine after one step (T_max 40), times the linear warm-up factor 2/3
    assert lrs[2] == pytest.approx(1e-3 * (1 + math.cos(math.pi / 40)) / 2 * 2 / 3, rel=1e-5)
    assert lrs[4] == pytest.approx(1e-3 * (1 + math.cos(3 * math.pi / 40)) / 2, rel=1e-5)
    assert all(e.value > 0 for e in acc.Scalars("losses/l_mos"))


def test_best_checkpoint_matches_logged_best(trained):
    _, exp, _ = trained
    state = load(exp / "training_states" / "12.state")
    best = state["best"]["val"]
    acc = EventAccumulator(str(exp / "tb_logger"))
    acc.Reload()
    values = {e.step: e.value for e in acc.Scalars("metrics/val/srcc")}
    assert best["iter"] == max(values, key=lambda s: (values[s], -s))
    assert best["value"] == pytest.approx(values[best["iter"]], abs=1e-6)
    assert load(exp / "models" / "net_best.pth")["iter"] == best["iter"]


def test_test_script_writes_csv_and_plot(trained, demo_data, tiny_backbone):
    root, exp, _ = trained
    opt = train_options("tiny_test", demo_data, tiny_backbone)
    test_opt = {k: opt[k] for k in ("name", "num_gpu", "manual_seed", "network")}
    test_opt["datasets"] = {"test": dict(opt["datasets"]["val"])}
    test_opt["path"] = {"pretrain_network_g": str(exp / "models" / "net_latest.pth"), "strict_load_g": True}
    yml = write_yaml(root / "tiny_test.yml", test_opt)
    proc = run_script([str(REPO / "test.py"), "-opt", str(yml), "--root", str(root)], cwd=root)
    out = root / "results" / "tiny_test"
    rows = list(csv.DictReader(open(out / "predictions_demo.csv")))
    assert len(rows) == 26 and list(rows[0]) == ["image", "mos", "mos_normalized", "prediction"]
    assert (out / "scatter_demo.png").stat().st_size > 1000
    for metric in ("SRCC", "PLCC", "KRCC", "RMSE"):
        assert f"{metric}: " in proc.stdout
    # the CSV holds what the trained network predicts for that image, normalised MOS included
    from pyiqa.archs import build_network
    from pyiqa.data import build_dataset
    net = build_network(opt["network"]).eval()
    net.load_trainable_state_dict(load(exp / "models" / "net_latest.pth")["params"])
    ds = build_dataset(test_opt["datasets"]["test"], "test", "datasets.test")
    item = ds[3]
    assert rows[3]["image"] == ds.table.iat[ds.rows[3], 0]  # the name as in the meta CSV
    assert item["img_path"].endswith(rows[3]["image"])
    assert float(rows[3]["mos_normalized"]) == pytest.approx(item["mos_label"].item(), abs=1e-5)
    assert float(rows[3]["mos"]) == pytest.approx(100 * item["mos_label"].item(), abs=1e-3)
    with torch.no_grad():
        assert float(rows[3]["prediction"]) == pytest.approx(net(item["img"][None]).item(), abs=1e-5)


def test_release_format_adapter_file_loads_in_test_script(trained, demo_data, tiny_backbone):
    root, exp, _ = trained
    params = load(exp / "models" / "net_latest.pth")["params"]
    release = root / "release_adapter.pth"
    torch.save({"params": {f"module.{k}": v for k, v in params.items()}}, release)
    opt = train_options("tiny_release", demo_data, tiny_backbone)
    test_opt = {k: opt[k] for k in ("name", "network")}
    test_opt["datasets"] = {"test": dict(opt["datasets"]["val"])}
    test_opt["path"] = {"pretrain_network_g": str(release)}
    run_script([str(REPO / "test.py"), "-opt", str(write_yaml(root / "rel.yml", test_opt)), "--root",
                str(root)], cwd=root)
    bad = root / "bad_adapter.pth"
    torch.save({"params": {"adapter.fc.0.weight": torch.zeros(3, 3)}}, bad)
    test_opt["path"] = {"pretrain_network_g": str(bad)}
    proc = run_script([str(REPO / "test.py"), "-opt", str(write_yaml(root / "bad.yml", test_opt)), "--root",
                       str(root)], cwd=root, check=False)
    assert proc.returncode == 2
    assert "bad_adapter.pth" in proc.stderr and "adapter.fc.2.weight" in proc.stderr


def _final_params(exp):
    return load(exp / "models" / "net_latest.pth")["params"]


def test_resume_continues_at_the_right_iteration_with_the_same_weights(tmp_path, demo_data, tiny_backbone):
    """20 iterations straight == 8 iterations, stop, then --auto_resume to 20 (crossing an epoch end)."""
    opt = train_options("straight", demo_data, tiny_backbone, train__total_iter=20, val__val_freq=100,
                        logger__save_latest_freq=4)
    run_script([str(REPO / "train.py"), "-opt", str(write_yaml(tmp_path / "a.yml", opt)), "--root",
                str(tmp_path)], cwd=tmp_path)
    opt["name"] = "stopped"
    yml = write_yaml(tmp_path / "b.yml", opt)
    run_script([str(REPO / "train.py"), "-opt", str(yml), "--root", str(tmp_path), "--force_yml",
                "train.total_iter=8"], cwd=tmp_path)
    proc = run_script([str(REPO / "train.py"), "-opt", str(yml), "--root", str(tmp_path), "--auto_resume"],
                      cwd=tmp_path)
    assert "Resumed from" in proc.stdout and "at epoch 0, step 8" in proc.stdout
    a, b = _final_params(tmp_path / "experiments" / "straight"), _final_params(tmp_path / "experiments" / "stopped")
    for key in a:
        assert torch.equal(a[key], b[key]), key
    state = load(tmp_path / "experiments" / "stopped" / "training_states" / "20.state")
    assert (state["iter"], state["epoch"], state["epoch_iter"]) == (20, 0, 20)  # 104 images / 4 = 26 per epoch


def test_killed_run_leaves_a_loadable_checkpoint_and_resumes(tmp_path, demo_data, tiny_backbone):
    opt = train_options("killed", demo_data, tiny_backbone, train__total_iter=100000, val__val_freq=100000,
                        logger__save_latest_freq=3, logger__print_freq=1)
    yml = write_yaml(tmp_path / "k.yml", opt)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(REPO / "train.py"), "-opt", str(yml), "--root", str(tmp_path)],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    states = tmp_path / "experiments" / "killed" / "training_states"
    deadline = time.time() + 120
    while time.time() < deadline and len(list(states.glob("*.state"))) < 2:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    saved = sorted(int(p.stem) for p in states.glob("*.state"))
    assert saved, "no training state was written before the kill"
    last = load(states / f"{saved[-1]}.state")  # complete and readable despite the kill
    assert last["iter"] == saved[-1]
    out = run_script([str(REPO / "train.py"), "-opt", str(yml), "--root", str(tmp_path), "--auto_resume",
                      "--force_yml", f"train.total_iter={saved[-1] + 2}"], cwd=tmp_path)
    assert f"iteration {saved[-1]}" in out.stdout
    assert load(tmp_path / "experiments" / "killed" / "models" / "net_latest.pth")["iter"] == saved[-1] + 2


def test_cpu_fallback_warning_and_clear_errors(tmp_path, demo_data, tiny_backbone):
    opt = train_options("fallback", demo_data, tiny_backbone, num_gpu=1, train__total_iter=2,
                        val__val_freq=100)
    proc = run_script([str(REPO / "train.py"), "-opt", str(write_yaml(tmp_path / "f.yml", opt)), "--root",
                       str(tmp_path)], cwd=tmp_path,
                      env_extra={"CUDA_VISIBLE_DEVICES": ""})
    assert "num_gpu: 1 but CUDA is not available: training on CPU" in proc.stdout
    # user mistakes stop before training, naming the key or file (in-process: the same main(argv))
    from pyiqa.train import main
    opt["train"]["optim"]["betas_typo"] = [0.9, 0.99]
    with pytest.raises(ConfigError, match=r"train\.optim\.betas_typo"):
        main(["-opt", str(write_yaml(tmp_path / "e.yml", opt)), "--root", str(tmp_path)])
    opt["train"]["optim"].pop("betas_typo")
    opt["network"]["backbone"] = str(tmp_path / "nowhere.pt")
    with pytest.raises(PyiqaError, match="nowhere.pt"):
        main(["-opt", str(write_yaml(tmp_path / "e.yml", opt)), "--root", str(tmp_path)])


def test_torchrun_two_processes_gloo(tmp_path, demo_data, tiny_backbone):
    opt = train_options("ddp", demo_data, tiny_backbone, train__total_iter=6, val__val_freq=3,
                        logger__save_latest_freq=3)
    yml = write_yaml(tmp_path / "ddp.yml", opt)
    proc = run_script(["-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29611",
                       str(REPO / "train.py"), "-opt", str(yml), "--root", str(tmp_path), "--launcher",
                       "pytorch"], cwd=tmp_path, timeout=300)
    assert "world size 2" in proc.stdout
    exp = tmp_path / "experiments" / "ddp"
    state = load(exp / "training_states" / "6.state")
    assert set(state["rng"]) == {0, 1}  # both ranks' RNG states are saved for an exact resume
    assert "13 iterations per epoch" in proc.stdout  # 104 images / (2 ranks x 4)
    ckpt = load(exp / "models" / "net_latest.pth")
    init = torch.tensor([0.2, 0.4, 0.6, 0.8, 1.0])
    assert not torch.allclose(ckpt["params"]["score_level"], init)  # it trained
    # the logged loss is the global batch's: the first step of 2 ranks x 4 images sees the same 8 samples
    # (same crops: drawn per sample) as one process with a batch of 8, from the same initial weights
    opt = train_options("single", demo_data, tiny_backbone, train__total_iter=1, val__val_freq=3)
    opt["datasets"]["train"]["batch_size_per_gpu"] = 8
    run_script([str(REPO / "train.py"), "-opt", str(write_yaml(tmp_path / "one.yml", opt)), "--root",
                str(tmp_path)], cwd=tmp_path)

    def first_loss(name):
        acc = EventAccumulator(str(tmp_path / "experiments" / name / "tb_logger"))
        acc.Reload()
        return acc.Scalars("losses/l_mos")[0]

    ddp, single = first_loss("ddp"), first_loss("single")
    assert ddp.step == single.step == 1 and ddp.value == pytest.approx(single.value, rel=1e-5)
