"""The download-free demo dataset: built once per module, then read through the real pipeline."""
import logging
import pickle

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pyiqa.data import build_dataloader, build_dataset
from pyiqa.data.loader_options import loader_options
from pyiqa.data.demo_dataset import build_demo_dataset, main


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return build_demo_dataset(tmp_path_factory.mktemp("demo") / "demo")


def test_layout_and_meta(demo):
    assert demo["built"] and demo["num_images"] == 130
    meta = pd.read_csv(demo["meta_info_file"])
    assert list(meta.columns[:5]) == ["image_name", "mos", "content", "distortion", "level"]
    assert [c for c in meta.columns if c.startswith("ratio802_seed123_split_")] == \
        [f"ratio802_seed123_split_{i:02d}" for i in range(1, 11)]
    assert len(meta) == 130 and meta["content"].nunique() == 10
    assert meta.groupby("content").size().eq(13).all()
    assert set(meta["distortion"]) == {"pristine", "darken", "desaturate", "contrast", "gnoise"}
    assert meta["mos"].between(0, 100).all()
    pristine = meta[meta.distortion == "pristine"]["mos"]
    assert (pristine > meta[meta.distortion != "pristine"]["mos"].max()).all()
    assert meta[meta.level == 3]["mos"].max() < meta[meta.level == 1]["mos"].min()
    for name in meta["image_name"].iloc[::13]:
        with Image.open(demo["root"] / name) as img:
            assert img.size == (384, 288) and img.mode == "RGB"
    # the global distortions a random tower registers: darker, greyer, flatter, noisier than the pristine
    def pixels(content, kind):
        return np.asarray(Image.open(demo["root"] / f"images/{content}_{kind}"), dtype=np.float64)
    ref = pixels("coffee", "pristine.png")
    assert pixels("coffee", "darken3.png").mean() < 0.3 * ref.mean()
    grey = pixels("coffee", "desaturate3.png")
    assert np.abs(grey - grey.mean(axis=2, keepdims=True)).max() <= 1.0 < np.abs(ref - ref.mean(axis=2, keepdims=True)).max()
    assert pixels("coffee", "contrast3.png").std() < 0.25 * ref.std()
    assert np.abs(pixels("coffee", "gnoise3.png") - ref).mean() > 40
    # contents are distinct photographs (no duplicated pristine images)
    refs = [np.asarray(Image.open(demo["root"] / n)) for n in meta[meta.level == 0]["image_name"]]
    assert len({r.tobytes() for r in refs}) == 10


def test_splits_are_content_disjoint_and_match_columns(demo):
    meta = pd.read_csv(demo["meta_info_file"])
    splits = pickle.loads(demo["split_file"].read_bytes())
    assert sorted(splits) == list(range(1, 11))
    test_sets = set()
    for index, split in splits.items():
        assert split["val"] == [] and len(split["train"]) == 104 and len(split["test"]) == 26
        train_c, test_c = set(meta.content[split["train"]]), set(meta.content[split["test"]])
        assert not train_c & test_c
        column = meta[f"ratio802_seed123_split_{index:02d}"]
        assert sorted(column.index[column == "test"]) == sorted(split["test"])
        test_sets.add(frozenset(test_c))
        # the honest 70/10/20 variant: the same test contents, one more content held out for validation
        honest = meta[f"ratio712_seed123_split_{index:02d}"]
        assert sorted(honest.index[honest == "test"]) == sorted(split["test"])
        parts = {part: set(meta.content[honest == part]) for part in ("train", "val", "test")}
        assert len(parts["val"]) == 1 and len(parts["train"]) == 7
        assert not (parts["val"] & parts["test"]) and not (parts["val"] & parts["train"])
    assert len(test_sets) == 10  # ten different splits


def test_second_call_skips_and_killed_build_is_redone(demo, caplog):
    with caplog.at_level(logging.INFO):
        assert build_demo_dataset(demo["root"])["built"] is False
    assert "already complete" in caplog.text
    (demo["root"] / ".complete").unlink()  # as if the build had been killed before the end
    assert build_demo_dataset(demo["root"])["built"] is True


def test_deterministic(demo, tmp_path):
    main(["--root", str(tmp_path / "again")])
    a = pd.read_csv(demo["meta_info_file"])
    b = pd.read_csv(tmp_path / "again" / "meta_info_demo.csv")
    pd.testing.assert_frame_equal(a, b)
    for name in a["image_name"].iloc[[1, 4, 7, 10]]:  # one per distortion, incl. seeded noise
        assert (demo["root"] / name).read_bytes() == (tmp_path / "again" / name).read_bytes()


def test_dataloader_with_two_workers_on_demo_split(demo):
    opt = dict(type="GeneralNRDataset", name="demo", dataroot_target=str(demo["root"]),
               meta_info_file=str(demo["meta_info_file"]), split_file=str(demo["split_file"]), split_index=3,
               mos_range=[0, 100], mos_normalize=True, augment={"hflip": True, "random_crop": 64},
               batch_size_per_gpu=8, num_worker_per_gpu=2)
    train = build_dataset(opt, "train", "datasets.train")
    assert len(train) == 104

    def epoch():
        loader = build_dataloader(train, loader_options(opt, "datasets.train"), "train", seed=123)
        return [(b["img_path"], b["img"]) for b in loader]

    first, second = epoch(), epoch()
    assert len(first) == 13 and first[0][1].shape == (8, 3, 64, 64)
    assert all(pa == pb and (ia == ib).all() for (pa, ia), (pb, ib) in zip(first, second))
    val_opt = {k: v for k, v in opt.items() if k != "augment"}
    val = build_dataset(val_opt, "val", "datasets.val")  # no 'val' rows -> test split
    batches = list(build_dataloader(val, loader_options(val_opt, "datasets.val"), "val"))
    labels = np.concatenate([b["mos_label"].numpy().ravel() for b in batches])
    assert len(labels) == 26 and labels.min() >= 0 and labels.max() <= 1
    assert batches[0]["img"].shape == (8, 3, 288, 384)
