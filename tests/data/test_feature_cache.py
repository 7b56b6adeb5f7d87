"""The feature cache: it stores the embeddings of exactly the views and crops the standard loop sees,
its key follows everything they depend on, and damaged or interrupted builds are repaired."""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import textwrap

import numpy as np
import pytest
import torch

from pyiqa.archs.uniqa_arch import UniQA
from pyiqa.data.builder import build_dataset
from pyiqa.data.failures import sample_seed
from pyiqa.data.feature_cache import FeatureCache
from pyiqa.data.image_io import to_tensor

from helpers import REPO

VIEWS = 2


def _dataset(demo, phase, **extra):
    opt = {"type": "GeneralNRDataset", "name": "demo", "dataroot_target": str(demo["root"]),
           "meta_info_file": str(demo["meta_info_file"]), "split_file": str(demo["split_file"]),
           "split_index": 1, "mos_range": [0, 100], "mos_normalize": True, **extra}
    return build_dataset(opt, phase, where=f"datasets.{phase}")


def _net(backbone, **options):
    torch.manual_seed(0)
    return UniQA(backbone=str(backbone), embedding_dim=32, **options)


@pytest.fixture(scope="module")
def train_set(demo_data):
    return _dataset(demo_data, "train", augment={"hflip": True, "random_crop": 224})


def test_cached_and_standard_forward_give_the_same_loss_on_the_same_views(tmp_path, demo_data, tiny_backbone,
                                                                           train_set):
    net = _net(tiny_backbone)
    table = FeatureCache(tmp_path, net, torch.device("cpu")).prepare(train_set, "views", VIEWS, seed=7,
                                                                   progress=False)
    rows, views = train_set.rows[:6], [0, 1, 1, 0, 1, 0]
    crops = []
    for row, v in zip(rows, views):  # the standard loop's crop of this (image, view): its seed, its transform
        torch.manual_seed(sample_seed(7, v, row))
        crops.append(to_tensor(train_set.transform(train_set.load_image(row))))
    labels = torch.tensor([[float(train_set.labels[r])] for r in rows])
    feats = torch.stack([torch.from_numpy(table.get(r)[v].astype(np.float32)) for r, v in zip(rows, views)])
    net.train()
    standard = net(torch.stack(crops))
    cached = net.forward_head(feats)
    assert torch.allclose(cached, standard, rtol=2e-3, atol=2e-4)   # fp16 storage of the embeddings
    loss_standard = torch.nn.functional.mse_loss(standard, labels)
    loss_cached = torch.nn.functional.mse_loss(cached, labels)
    assert loss_cached.item() == pytest.approx(loss_standard.item(), rel=5e-3)
    # gradients reach the adapter the same way
    loss_cached.backward()
    assert net.adapter.fc[0].weight.grad is not None and net.adapter.fc[0].weight.grad.abs().sum() > 0


def test_cached_test_crops_score_like_evaluation(tmp_path, demo_data, tiny_backbone):
    test_set = _dataset(demo_data, "test")
    net = _net(tiny_backbone).eval()
    table = FeatureCache(tmp_path, net, torch.device("cpu")).prepare(test_set, "crops", progress=False)
    rows = test_set.rows[:4]
    with torch.no_grad():
        standard = net([to_tensor(test_set.load_image(r)) for r in rows])
        feats = torch.stack([torch.from_numpy(table.get(r).astype(np.float32)) for r in rows])
        cached = net.forward_head(feats)
    assert table.spec.per_image == 10 and feats.shape[1:] == (10, net.clip.visual.proj.shape[1])
    assert torch.allclose(cached, standard, rtol=2e-3, atol=2e-4)


def test_key_follows_backbone_file_crops_sample_size_and_views(tmp_path, demo_data, tiny_backbone, train_set):
    from pyiqa.archs.clip_backbone import save_random_backbone
    base = _net(tiny_backbone)
    cache = FeatureCache(tmp_path, base, torch.device("cpu"))
    key = cache.spec(train_set, "views", 4, seed=1).key
    assert cache.spec(train_set, "views", 4, seed=1).key == key                        # stable
    assert FeatureCache(tmp_path, _net(tiny_backbone), "cpu").spec(train_set, "views", 4, 1).key == key
    assert cache.spec(train_set, "views", 5, seed=1).key != key                        # K
    assert cache.spec(train_set, "views", 4, seed=2).key != key                        # views' seed
    other_file = tmp_path / "other.pt"                                                 # another backbone file
    save_random_backbone(other_file, config="tiny", dtype=torch.float16, seed=1)
    assert FeatureCache(tmp_path, _net(other_file), "cpu").spec(train_set, "views", 4, 1).key != key
    small = FeatureCache(tmp_path, _net(tiny_backbone, sample_size=192), "cpu")        # sample size
    assert small.spec(train_set, "views", 4, 1).key != key
    crops = cache.spec(train_set, "crops").key
    assert FeatureCache(tmp_path, _net(tiny_backbone, test_crop="center"), "cpu").spec(
        train_set, "crops").key != crops                                               # crop protocol
    assert FeatureCache(tmp_path, _net(tiny_backbone, num_crops=5), "cpu").spec(train_set, "crops").key != crops
    flipped = _dataset(demo_data, "train", augment={"random_crop": 224})               # the transform
    assert cache.spec(flipped, "views", 4, 1).key != key


def test_corrupted_truncated_and_changed_shards_are_rebuilt(tmp_path, demo_data, tiny_backbone, train_set,
                                                            monkeypatch, caplog):
    import pyiqa.data.feature_cache as fc
    monkeypatch.setattr(fc, "SHARD_ROWS", 32)
    net = _net(tiny_backbone)
    cache = FeatureCache(tmp_path, net, torch.device("cpu"))
    table = cache.prepare(train_set, "views", VIEWS, seed=3, progress=False)
    reference = {r: table.get(r).copy() for r in train_set.rows}
    shards = sorted(table.folder.glob("shard-*.npy"))
    assert len(shards) == 4                                     # 104 training rows in shards of 32
    data = bytearray(shards[0].read_bytes())
    data[-5] ^= 0xFF                                            # one flipped byte
    shards[0].write_bytes(bytes(data))
    with open(shards[1], "r+b") as f:                           # a truncated file
        f.truncate(shards[1].stat().st_size // 2)
    image = train_set.image_path(json.loads(shards[2].with_suffix(".json").read_text())["rows"][0])
    os.utime(image, ns=(time.time_ns(), time.time_ns()))       # an image replaced since
    untouched = {p.name: p.stat().st_mtime_ns for p in shards}
    with caplog.at_level(logging.WARNING):
        table = cache.prepare(train_set, "views", VIEWS, seed=3, progress=False)
    assert "does not match the recorded SHA-256" in caplog.text and "changed since" in caplog.text
    assert caplog.text.count("deleted and rebuilt") == 3     # shard 3 is intact and kept
    for row, expected in reference.items():                    # rebuilt to the same embeddings
        np.testing.assert_array_equal(table.get(row), expected)
    after = {p.name: p.stat().st_mtime_ns for p in table.folder.glob("shard-*.npy")}
    kept = next(name for name in untouched if name not in {s.name for s in shards[:3]})
    assert len(after) == 4 and after[kept] == untouched[kept]      # the intact shard is kept as it was


def test_killed_build_keeps_finished_shards_and_resumes(tmp_path, demo_data, tiny_backbone):
    """A build SIGKILLed mid-way: its finished shards stay, a re-run builds only the rest."""
    script = tmp_path / "build.py"
    script.write_text(textwrap.dedent(f"""
        import sys, time, torch
        sys.path.insert(0, {str(REPO / 'tests')!r})
        import pyiqa.data.feature_cache as fc
        from feature_cache_support import build
        fc.SHARD_ROWS = 8
        slow = len(sys.argv) > 1
        embed = fc.FeatureCache._embed
        def slowed(self, crops):        # a slow device: time to kill the build between shards
            if slow:
                time.sleep(0.15)
            return embed(self, crops)
        fc.FeatureCache._embed = slowed
        build({str(demo_data['root'])!r}, {str(demo_data['meta_info_file'])!r}, {str(demo_data['split_file'])!r},
              {str(tiny_backbone)!r}, {str(tmp_path / 'cache')!r})
    """))
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, str(script), "slow"], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 120
    shards = lambda: sorted((tmp_path / "cache").glob("*/shard-*.json"))  # noqa: E731
    while time.time() < deadline and len(shards()) < 3 and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = {p.name: p.stat().st_mtime_ns for p in shards()}
    assert 3 <= len(kept) < 13, "the build was not killed mid-way"   # 104 rows / 8 = 13 shards
    out = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"building {104 - 8 * len(kept)} of 104 images" in out.stdout + out.stderr
    after = {p.name: p.stat().st_mtime_ns for p in shards()}
    assert len(after) == 13 and all(after[name] == mtime for name, mtime in kept.items())
