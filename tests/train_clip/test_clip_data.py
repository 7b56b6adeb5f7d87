"""Caption sources, the bad inputs of the issue, per-sample determinism and the demo captions."""
from __future__ import annotations

import json

import pandas as pd
import pytest
import torch

from pyiqa.utils.errors import ConfigError, DataError
from pyiqa.data.failures import FailureTracker
from train_clip.data import (CaptionDataset, build_samples, clip_transform, drop_missing,
                             read_csv_source, read_json_source)
from train_clip.demo_captions import captions_for, level_word, write_demo_captions


def test_json_entry_without_key_names_file_and_index(tmp_path):
    path = tmp_path / "caps.json"
    path.write_text(json.dumps([{"image_path": "a.png", "prompt": "ok"}, {"image_path": "b.png"}]))
    with pytest.raises(DataError, match=r"caps\.json' entry 1 has no 'prompt'"):
        read_json_source(path)
    path.write_text(json.dumps([{"prompt": "no image"}]))
    with pytest.raises(DataError, match=r"entry 0 has no 'image_path'"):
        read_json_source(path)


def test_empty_prompt_list_is_an_error(tmp_path):
    path = tmp_path / "caps.json"
    path.write_text(json.dumps([{"image_path": "a.png", "prompt": ["x"]}, {"image_path": "b.png", "prompt": []}]))
    with pytest.raises(DataError, match=r"caps\.json' entry 1: 'prompt' must be a string or a non-empty list"):
        read_json_source(path)


def test_json_paths_resolve_against_data_root_or_the_file(tmp_path):
    path = tmp_path / "caps.json"
    path.write_text(json.dumps([{"image_path": "x/a.png", "prompt": ["one", "two"]}]))
    assert read_json_source(path) == [(str(tmp_path / "x/a.png"), ("one", "two"))]
    assert read_json_source(path, data_root="/data")[0][0] == "/data/x/a.png"


def test_csv_and_tsv_sources_and_mixing(pairs, tmp_path):
    samples = read_csv_source(pairs["csv"])
    assert len(samples) == 16 and samples[0][1] == ("a red image with horizontal stripes",)
    tsv = tmp_path / "pairs.tsv"
    pd.read_csv(pairs["csv"]).rename(columns={"filepath": "img"}).to_csv(tsv, sep="\t", index=False)
    assert len(read_csv_source(tsv, img_key="img", data_root=str(pairs["root"]))) == 16
    with pytest.raises(DataError, match=r"no column 'filepath'.*Columns: \['img', 'caption'\]"):
        read_csv_source(tsv)
    mixed = build_samples([{"type": "json", "path": str(pairs["json"]), "repeat": 2},
                           {"type": "csv", "path": str(pairs["csv"])}], "data.train")
    assert len(mixed) == 48
    with pytest.raises(ConfigError, match=r"Unknown option 'data.train\[0\].pth'.*Did you mean 'path'"):
        build_samples([{"type": "json", "pth": "x"}], "data.train")


def test_long_caption_is_truncated_to_77_tokens(pairs):
    long = " ".join(["blurry"] * 200)
    ds = CaptionDataset([(str(pairs["root"] / pairs["entries"][0]["image_path"]), (long,))],
                        clip_transform(64, True), context_length=77)
    item = ds[0]
    assert item["text"].shape == (77,) and item["truncated"]
    assert item["text"][-1].item() == ds.tokenizer.eot_token_id


def test_samples_depend_only_on_seed_epoch_and_index(pairs):
    samples = build_samples([{"type": "json", "path": str(pairs["json"])}], "data.train")
    a = CaptionDataset(samples, clip_transform(64, True, {"scale": [0.3, 1.0]}), seed=5)
    b = CaptionDataset(samples, clip_transform(64, True, {"scale": [0.3, 1.0]}), seed=5)
    torch.manual_seed(123)  # the global RNG must not matter
    x = a[3]
    torch.rand(100)
    assert torch.equal(x["image"], b[3]["image"]) and x["caption"] == b[3]["caption"]
    a.reseed(5, 1)
    assert not torch.equal(a[3]["image"], x["image"])
    a.reseed(5, 0)
    assert torch.equal(a[3]["image"], x["image"])


def test_corrupt_image_is_replaced_and_reported(pairs):
    good = build_samples([{"type": "json", "path": str(pairs["json"])}], "data.train")
    ds = CaptionDataset([(str(pairs["broken"]), ("broken",))] + good, clip_transform(64, True))
    item = ds[0]
    assert item["image"].shape == (3, 64, 64) and item["caption"] != "broken"
    assert item["failed"][0][0] == str(pairs["broken"])


def test_missing_images_are_skipped_up_to_one_percent(tmp_path, pairs):
    good = build_samples([{"type": "json", "path": str(pairs["json"])}], "data.train") * 13  # 208
    samples = good + [(str(tmp_path / "gone.png"), ("x",))]
    tracker = FailureTracker(len(samples), 0.01)
    assert len(drop_missing(samples, tracker)) == 208 and list(tracker.failed) == [str(tmp_path / "gone.png")]
    samples += [(str(tmp_path / f"gone{k}.png"), ("x",)) for k in range(3)]
    report = tmp_path / "failed_images.txt"
    with pytest.raises(DataError, match=r"(?s)4 of 212 training images are missing or unreadable.*gone1\.png"):
        drop_missing(samples, FailureTracker(len(samples), 0.01, report=report))
    assert len(report.read_text().splitlines()) == 4


def test_demo_captions_use_uniqa_level_words():
    assert [level_word(m) for m in (5, 21, 45, 68, 79.9, 80, 90)] == \
        ["bad", "poor", "fair", "good", "good", "perfect", "perfect"]
    caps = captions_for("gblur", 3, 21.0)
    assert caps[0] == "a heavily blurred photo of poor quality" and "poor image" in caps
    caps = captions_for("darken", 2, 45.0)  # every distortion the demo builds has caption words
    assert caps[0] == "a moderately underexposed photo of fair quality" and "fair image with moderately " \
        "visible underexposure" in caps and "a moderately dark image of fair quality" in caps
    assert captions_for("desaturate", 1, 70.0)[0] == "a slightly desaturated photo of good quality"
    from pyiqa.data.demo_dataset import DISTORTIONS
    from train_clip.demo_captions import DISTORTION_WORDS
    assert set(DISTORTIONS) <= set(DISTORTION_WORDS)
    assert captions_for("pristine", 0, 90.0)[0] == "a sharp, clean photo of perfect quality"


def test_demo_captions_hold_only_the_train_images_of_the_split(demo_data):
    path = write_demo_captions(demo_data["root"], split_index=1, phase="train")
    entries = json.loads(path.read_text())
    table = pd.read_csv(demo_data["meta_info_file"])
    held_out = set(table.loc[table["ratio712_seed123_split_01"] != "train", "image_name"])
    assert len(held_out) == 39  # the adapter demo's validation scene and two test scenes
    assert len(entries) == 91 and not held_out & {e["image_path"] for e in entries}
