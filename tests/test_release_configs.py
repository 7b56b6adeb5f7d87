"""The authors' release configs (tests/fixtures/release, verbatim) load unchanged and start a real run."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from pyiqa.engine.options import parse_options

from helpers import REPO

RELEASE = REPO / "tests" / "fixtures" / "release"
# The files must stay byte-identical to the release: comments, blank lines and trailing spaces included.
SHA256 = {"livec.yml": "75b4970c5c08aa7835eafa12e76c6968d1cb86592c506bb403ea53c3a9f3a3c7",
          "koniq.yml": "60dbed3bace1bcd8c77e34b8210c2f6c0139100c4c0fddbf0403d79055106288"}


def demo_overrides(name: str, demo, backbone: Path, total_epoch: int = 1) -> list[str]:
    """``--force_yml`` items pointing a release config at the demo data and a tiny CLIP, on CPU."""
    items = [f"name={name}", "num_gpu=0", f"network.backbone={backbone}", f"train.total_epoch={total_epoch}"]
    for phase in ("train", "val"):
        items += [f"datasets.{phase}.type=GeneralNRDataset", f"datasets.{phase}.dataroot_target={demo['root']}",
                  f"datasets.{phase}.meta_info_file={demo['meta_info_file']}",
                  f"datasets.{phase}.split_file={demo['split_file']}", f"datasets.{phase}.num_worker_per_gpu=0"]
    return items


@pytest.mark.parametrize("name", sorted(SHA256))
def test_fixture_is_the_release_file_byte_for_byte(name):
    data = (RELEASE / name).read_bytes()
    assert hashlib.sha256(data).hexdigest() == SHA256[name]
    assert b"    lower_better: false \n" in data and b"    type: Adam \n" in data


@pytest.mark.parametrize("name,val_freq,total_epoch", [("livec.yml", 200, 50), ("koniq.yml", 2000, 20)])
def test_release_config_loads_unchanged_with_every_key(name, val_freq, total_epoch):
    opt, notices = parse_options(RELEASE / name, is_train=True)
    # the release writes integers as !!float 2000: the typed config holds the integers they mean
    assert opt.val.val_freq == val_freq and isinstance(opt.val.val_freq, int)
    assert opt.logger.save_latest_freq == 1000 and isinstance(opt.logger.save_latest_freq, int)
    assert opt.train.total_iter == 2000000 and opt.train.total_epoch == total_epoch
    assert opt.train.optim == {"type": "Adam", "lr": 2e-4}
    assert opt.val.key_metric == "srcc"
    legacy = {n.split("'")[1] for n in notices}
    assert {"logger.log_imgs_freq", "logger.wandb", "val.save_img", "dist_params.port"} <= legacy
    assert all(n.startswith("Ignoring legacy option") and "\n" not in n for n in notices)


@pytest.mark.parametrize("name", sorted(SHA256))
def test_release_config_with_demo_overrides_validates(name, demo_data, tiny_backbone):
    opt, _ = parse_options(RELEASE / name, demo_overrides("rel", demo_data, tiny_backbone), is_train=True)
    assert opt.datasets["train"]["split_file"] == str(demo_data["split_file"])
    assert opt.val.val_freq == (200 if name == "livec.yml" else 2000)  # untouched


def test_release_livec_config_trains_for_real(tmp_path, demo_data, tiny_backbone):
    """One epoch of the release LIVEC recipe (floats for val_freq/save_latest_freq, total_iter and
    total_epoch both set, legacy keys) through the real trainer, on the demo data."""
    from pyiqa.train import main
    main(["-opt", str(RELEASE / "livec.yml"), "--root", str(tmp_path),
          "--force_yml", *demo_overrides("release_livec", demo_data, tiny_backbone)])
    exp = tmp_path / "experiments" / "release_livec"
    latest = torch.load(exp / "models" / "net_latest.pth", map_location="cpu", weights_only=True)
    assert latest["iter"] == 13  # total_epoch wins over total_iter: 104 training images / batch 8
    assert latest["config"]["val"]["val_freq"] == 200.0
    assert (exp / "models" / "net_best.pth").is_file()  # validated once, at the end (val_freq > run)
    log = next(exp.glob("train_release_livec_*.log")).read_text()
    assert "Ignoring legacy option 'logger.log_imgs_freq': IQA training logs no images" in log
    assert "train.total_epoch=1 sets the length" in log
