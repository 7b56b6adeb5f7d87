"""Planted pickles never run code.

Every entry point that reads a torch file or a split pickle is given a file holding an object whose
``__reduce__`` would create a marker file when unpickled. The run must stop with a PyiqaError naming the
planted file, and the marker must not exist. Legit files (a real training state, NumPy integer splits)
still load.
"""
from __future__ import annotations

import logging
import pickle
import random
from pathlib import Path
from typing import Any, Callable, Dict

import numpy as np
import pytest
import torch

from helpers import train_options, write_yaml
from pyiqa.utils.checkpoint import atomic_save, load_checkpoint
from pyiqa.utils.errors import CheckpointError, DataError, PyiqaError
from pyiqa.utils.rng import get_rng_state, set_rng_state


class Planted:
    """Unpickling this calls ``open(marker, 'w')``: the marker exists iff the loader ran pickled code."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture
def marker(tmp_path) -> Path:
    return tmp_path / "PWNED"


def plant_torch(path: Path, marker: Path, **entries: Any) -> Path:
    """A torch file shaped like a checkpoint/state whose entries include a Planted object."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"params": {"score_level": torch.zeros(5)}, **entries, "payload": Planted(marker)}, path)
    return path


def refused(call: Callable[[], Any], planted: Path, marker: Path) -> PyiqaError:
    """Run ``call``; it must raise a PyiqaError naming ``planted``, without creating ``marker``."""
    with pytest.raises(PyiqaError) as info:
        call()
    assert str(planted) in str(info.value)
    assert not marker.exists(), "the planted object's code ran"
    return info.value


def options(name: str, demo_data: Dict[str, Any], backbone: Path, **changes: Any) -> Dict[str, Any]:
    short = dict(train__total_iter=2, val__val_freq=100, logger__save_latest_freq=2,
                 logger__use_tb_logger=False)
    return train_options(name, demo_data, backbone, **{**short, **changes})


# ------------------------------------------------------------------------------------ the six ways in
def test_pretrain_network_g_in_training(tmp_path, marker, demo_data, tiny_backbone):
    from pyiqa.train import main
    evil = plant_torch(tmp_path / "net_best.pth", marker)
    yml = write_yaml(tmp_path / "t.yml", options("pre", demo_data, tiny_backbone,
                                                 path__pretrain_network_g=str(evil)))
    err = refused(lambda: main(["-opt", str(yml), "--root", str(tmp_path)]), evil, marker)
    assert isinstance(err, CheckpointError)
    assert "refused" in str(err) and "io.open" in str(err) and "weights_only=False" in str(err)


def test_pretrain_network_g_in_testing(tmp_path, marker, demo_data, tiny_backbone):
    from pyiqa.test import main
    evil = plant_torch(tmp_path / "net_best.pth", marker)
    opt = options("tst", demo_data, tiny_backbone)
    test_opt = {"name": "tst", "num_gpu": 0, "network": opt["network"],
                "datasets": {"test": opt["datasets"]["val"]}, "path": {"pretrain_network_g": str(evil)}}
    yml = write_yaml(tmp_path / "t.yml", test_opt)
    refused(lambda: main(["-opt", str(yml), "--root", str(tmp_path)]), evil, marker)


def test_resume_state(tmp_path, marker, demo_data, tiny_backbone):
    from pyiqa.train import main
    evil = plant_torch(tmp_path / "elsewhere" / "4.state", marker, rng={0: {}}, iter=4)
    yml = write_yaml(tmp_path / "t.yml", options("res", demo_data, tiny_backbone,
                                                 path__resume_state=str(evil)))
    err = refused(lambda: main(["-opt", str(yml), "--root", str(tmp_path)]), evil, marker)
    assert "Training state" in str(err)


def test_auto_resume_finds_a_planted_state(tmp_path, marker, demo_data, tiny_backbone):
    from pyiqa.train import main
    evil = plant_torch(tmp_path / "experiments" / "auto" / "training_states" / "999.state", marker,
                       rng={0: {}}, iter=999)
    yml = write_yaml(tmp_path / "t.yml", options("auto", demo_data, tiny_backbone))
    refused(lambda: main(["-opt", str(yml), "--root", str(tmp_path), "--auto_resume"]), evil, marker)


def test_export_of_a_train_clip_state(tmp_path, marker):
    from train_clip.export import main
    evil = plant_torch(tmp_path / "5000.state", marker, model={}, step=5000)
    out = tmp_path / "backbone.pt"
    refused(lambda: main(["--state", str(evil), "--out", str(out)]), evil, marker)
    assert not out.exists()


def test_split_file(tmp_path, marker, demo_data, tiny_backbone):
    from pyiqa.train import main
    evil = tmp_path / "split.pkl"
    with open(evil, "wb") as f:
        pickle.dump({1: {"train": list(range(80)), "val": Planted(marker), "test": []}}, f)
    opt = options("split", demo_data, tiny_backbone)
    for d in opt["datasets"].values():
        d["split_file"] = str(evil)
    yml = write_yaml(tmp_path / "t.yml", opt)
    err = refused(lambda: main(["-opt", str(yml), "--root", str(tmp_path)]), evil, marker)
    assert isinstance(err, DataError) and "io.open" in str(err)


# ------------------------------------------------------------------------------------ what still loads
def test_training_state_of_a_real_run_loads_and_resumes(tmp_path, demo_data, tiny_backbone):
    """A real run's state (optimiser, scheduler, best record, config, RNG) is weights_only-safe, and
    a run resumed from it continues exactly as one that never stopped."""
    from pyiqa.train import main
    opt = options("real", demo_data, tiny_backbone, train__total_iter=4, val__val_freq=2)
    yml = write_yaml(tmp_path / "r.yml", opt)
    main(["-opt", str(yml), "--root", str(tmp_path), "--force_yml", "train.total_iter=2"])
    states = tmp_path / "experiments" / "real" / "training_states"
    state = load_checkpoint(states / "2.state", "training state")
    assert state["iter"] == 2 and state["config"]["name"] == "real"
    assert state["best"]["val"]["iter"] == 2 and "optimizer" in state and "scheduler" in state
    assert isinstance(state["rng"][0]["numpy"]["keys"], torch.Tensor)
    main(["-opt", str(yml), "--root", str(tmp_path), "--auto_resume"])
    opt["name"] = "straight"
    main(["-opt", str(write_yaml(tmp_path / "s.yml", opt)), "--root", str(tmp_path)])
    resumed = load_checkpoint(states / "4.state")["params"]
    straight = load_checkpoint(tmp_path / "experiments" / "straight" / "training_states" / "4.state")
    for key, value in straight["params"].items():
        assert torch.equal(resumed[key], value), key


def test_rng_state_round_trips_through_a_weights_only_file(tmp_path):
    np.random.seed(7)
    np.random.standard_normal()  # leaves a cached Gaussian in numpy's state
    path = tmp_path / "rng.state"
    atomic_save({"rng": {0: get_rng_state()}}, path)

    def draws():
        return (random.random(), np.random.standard_normal(4).tolist(),
                np.random.randint(0, 2 ** 31, 4).tolist(), torch.rand(4).tolist())

    expected = draws()
    set_rng_state(load_checkpoint(path, "training state")["rng"][0])
    assert draws() == expected


def test_train_clip_state_pieces_load_weights_only(tmp_path):
    """What train_clip's Trainer.save writes: model, AdamW, scaler, failures, RNG, config, version."""
    from pyiqa.archs.clip_backbone import build_clip
    model = build_clip("random-tiny")
    optimizer = torch.optim.AdamW([p for p in model.parameters()][:3], lr=1e-3)
    sum(p.sum() for p in list(model.parameters())[:3]).backward()
    optimizer.step()
    scaler = torch.amp.GradScaler("cpu")
    state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
             "scaler": scaler.state_dict(), "step": 3, "epoch": 0, "epoch_step": 3, "global_batch": 8,
             "failed": {"img/a.png": "cannot identify image file"}, "rng": {0: get_rng_state()},
             "config": {"name": "x", "train": {"lr": 1e-3, "betas": [0.9, 0.98]}, "eval": None},
             "version": "0.1.0"}
    atomic_save(state, tmp_path / "3.state")
    loaded = load_checkpoint(tmp_path / "3.state", "training state")
    assert loaded["failed"] == state["failed"] and loaded["config"] == state["config"]
    assert loaded["optimizer"]["state"][0]["step"] == optimizer.state_dict()["state"][0]["step"]
    torch.optim.AdamW([p for p in model.parameters()][:3], lr=1e-3).load_state_dict(loaded["optimizer"])


def test_load_checkpoint_errors_name_the_file(tmp_path):
    with pytest.raises(CheckpointError, match=r"No adapter checkpoint file exists at '.*nope.pth'"):
        load_checkpoint(tmp_path / "nope.pth", "adapter checkpoint")
    cut = tmp_path / "cut.pth"
    torch.save({"w": torch.zeros(1000)}, cut)
    cut.write_bytes(cut.read_bytes()[:300])
    with pytest.raises(CheckpointError, match=r"Cannot read training state '.*cut.pth'.*corrupt or "
                                              r"truncated"):
        load_checkpoint(cut, "training state")


def test_split_pickle_with_numpy_integers_is_accepted(tmp_path):
    from pyiqa.data.meta_info import read_split_pickle
    path = tmp_path / "np.pkl"
    for protocol in (2, 4, 5):
        with open(path, "wb") as f:
            pickle.dump({np.int64(1): {"train": np.arange(5, dtype=np.int32), "val": [np.int64(7)],
                                       "test": (np.uint16(9),)}, 2: {"train": {3, 4}}}, f,
                        protocol=protocol)
        assert read_split_pickle(path, 1) == {"train": [0, 1, 2, 3, 4], "val": [7], "test": [9]}
        assert sorted(read_split_pickle(path, "2")["train"]) == [3, 4]


@pytest.mark.parametrize("value, match", [
    (np.arange(3, dtype=np.float64), r"NumPy ndarray of dtype float64"),
    (np.float32(2.0), r"NumPy float32 of dtype float32"),
    (2.5, r"is a float"),
    (logging.Formatter(), r"refused: it holds the Python object logging.Formatter"),
    (Path("x"), r"refused: it holds the Python object pathlib"),
])
def test_split_pickle_with_other_values_is_refused(tmp_path, value, match):
    from pyiqa.data.meta_info import read_split_pickle
    path = tmp_path / "bad.pkl"
    with open(path, "wb") as f:
        pickle.dump({1: {"train": [0, 1], "val": value}}, f)
    with pytest.raises(DataError, match=match) as info:
        read_split_pickle(path, 1)
    assert str(path) in str(info.value)
