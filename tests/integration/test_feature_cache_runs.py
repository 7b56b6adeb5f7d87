"""``train.feature_cache: true`` end to end: the log says which loop ran, results.json records it, a second
run reuses the cache, a resumed cached run continues exactly, and two DDP ranks read one cache."""
from __future__ import annotations

import json

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from pyiqa.train import main
from helpers import REPO, run_script, train_options, write_yaml


def _losses(exp):
    acc = EventAccumulator(str(exp / "tb_logger"), size_guidance={"scalars": 0})
    acc.Reload()
    return {e.step: e.value for e in acc.Scalars("losses/l_mos")}


def _cached(name, demo, backbone, cache_dir, **changes):
    options = dict(train__feature_cache=True, train__views_per_image=2, train__feature_cache_dir=str(cache_dir),
                   precision="fp32", logger__print_freq=1)
    return train_options(name, demo, backbone, **{**options, **changes})


def test_cached_run_reuses_its_cache_and_resumes_exactly(tmp_path, demo_data, tiny_backbone, capfd):
    cache = tmp_path / "cache"
    straight = _cached("straight", demo_data, tiny_backbone, cache, train__total_iter=8, val__val_freq=4)
    main(["-opt", str(write_yaml(tmp_path / "a.yml", straight)), "--root", str(tmp_path)])
    log = capfd.readouterr().out
    assert "Training loop: cached features (2 fixed views per training image" in log
    # the 80/20 split has no val part: validation runs on the 26 test images
    assert "building 104 of 104 images' demo views" in log and "building 26 of 26 images' demo crops" in log
    exp = tmp_path / "experiments" / "straight"
    results = json.loads((exp / "results.json").read_text())
    assert results["feature_cache"] is True and results["iterations"] == 8 and 0 <= results["best"]["val"]["iter"] <= 8
    expected = _losses(exp)

    first = _cached("resumed", demo_data, tiny_backbone, cache, train__total_iter=4, val__val_freq=4)
    yml = write_yaml(tmp_path / "b.yml", first)
    main(["-opt", str(yml), "--root", str(tmp_path)])
    main(["-opt", str(yml), "--root", str(tmp_path), "--auto_resume", "--force_yml", "train.total_iter=8"])
    log = capfd.readouterr().out
    assert "building" not in log and "all 104 images' demo views" in log  # the cache is reused
    assert "at epoch 0, step 4" in log
    resumed = _losses(tmp_path / "experiments" / "resumed")
    assert [resumed[s] for s in range(5, 9)] == [expected[s] for s in range(5, 9)]    # bit for bit


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
