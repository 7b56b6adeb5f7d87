"""IQA-PyTorch's published meta CSVs and split pickles, used unchanged by our shipped training configs.

The fixtures (tests/fixtures/iqa_pytorch, sources in its SOURCE.md) are verbatim excerpts of the files
IQA-PyTorch published (header + first rows) and the structure of its split pickles as our restricted
unpickler reads them; ``*.split.json`` keep each pickle's lists restricted to the excerpt's rows, in their
order. Each test builds the shipped config's ``datasets`` sections through the real builder, replacing
only the paths (image folder, meta CSV, split file), and checks the rows each phase selects, the image
names and the normalised MOS against the CSV read independently here.
"""
from __future__ import annotations

import csv
import json
import logging
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from helpers import REPO
from pyiqa.data import build_dataset
from pyiqa.data.meta_info import read_split_pickle
from pyiqa.utils.errors import DataError

FIXTURES = REPO / "tests" / "fixtures" / "iqa_pytorch"
CONFIGS = REPO / "pyiqa" / "configs" / "train" / "UniQA"


@dataclass(frozen=True)
class Published:
    """One dataset: its shipped config and IQA-PyTorch's files, with what the config must say."""
    config: str                 # pyiqa/configs/train/UniQA/<config>.yml
    csv: str                    # IQA-PyTorch's meta CSV (excerpt), under its published name
    split: Optional[str]        # <split>.split.json: IQA-PyTorch's split pickle; None: none published
    image_column: str           # where IQA-PyTorch's layout keeps the image name ...
    mos_column: str             # ... and the score
    mos_range: Tuple[float, float]
    lower_better: bool
    dropped: int = 0            # leading CSV rows the dataset class drops (LIVE Challenge's 7)


DATASETS = {
    "koniq": Published("koniq", "meta_info_KonIQ10kDataset.csv", "koniq10k_official", "img_name", "mos",
                       (0, 100), False),
    "livec": Published("livec", "meta_info_LIVEChallengeDataset.csv", "livechallenge_seed123", "img_name",
                       "mos", (0, 100), False, dropped=7),
    "kadid10k": Published("kadid10k", "meta_info_KADID10kDataset.csv", None, "dist_name", "dmos", (1, 5),
                          False),
    "tid2013": Published("tid2013", "meta_info_TID2013Dataset.csv", "tid2013_seed123", "dist_name", "mos",
                         (0, 9), False),
    "csiq": Published("csiq", "meta_info_CSIQDataset.csv", "csiq_123", "dist_name", "dmos", (0, 1), True),
    "live": Published("live", "meta_info_LIVEIQADataset.csv", "live_123", "dist_name", "mos", (0, 100), True),
    "spaq": Published("spaq", "meta_info_SPAQDataset.csv", "spaq_seed123", "Image name", "MOS", (0, 100),
                      False),
}


# --- helpers ---------------------------------------------------------------------------------------
def csv_rows(path: Path) -> List[Dict[str, str]]:
    """The CSV as dicts, read with the csv module (not the code under test)."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def recorded_split(name: str) -> dict:
    return json.loads((FIXTURES / f"{name}.split.json").read_text())


def write_split_pickle(name: str, path: Path) -> Dict[int, Dict[str, List[int]]]:
    """IQA-PyTorch's split pickle restricted to the excerpt: same keys (ints), same phases (LIVE
    Challenge's has no 'test'), each list the published one's rows inside the excerpt, in order."""
    splits = {int(k): {phase: part["in_excerpt"] for phase, part in v.items()}
              for k, v in recorded_split(name)["splits"].items()}
    path.write_bytes(pickle.dumps(splits))
    return splits


def write_images(root: Path, names: List[str], size: int = 8) -> None:
    rng = np.random.default_rng(0)
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)).save(path)


def shipped_sections(config: str) -> Dict[str, dict]:
    """The ``datasets`` sections of a shipped training config, read as YAML (anchors resolved)."""
    opt = yaml.safe_load((CONFIGS / f"{config}.yml").read_text())
    return opt["datasets"]


def with_paths(section: dict, root: Path, meta: Path, split_file: Optional[Path]) -> dict:
    out = {**section, "dataroot_target": str(root), "meta_info_file": str(meta)}
    if split_file is not None:
        out["split_file"] = str(split_file)
    return out


def expected_label(mos: float, spec: Published) -> float:
    lo, hi = spec.mos_range
    norm = (mos - lo) / (hi - lo)
    return 1.0 - norm if spec.lower_better else norm


def phase_rows(splits: Dict[int, Dict[str, List[int]]], phase: str) -> List[int]:
    """Rows of split 1 for ``phase``; a val phase without val rows uses the test rows (our protocol)."""
    split = splits[1]
    if phase == "val" and not split.get("val"):
        return split.get("test", [])
    return split.get(phase, [])


def copy_excerpt(spec: Published, folder: Path) -> Path:
    """IQA-PyTorch's meta CSV, byte for byte, under the name our configs use."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / spec.csv
    target.write_bytes((FIXTURES / spec.csv).read_bytes())
    return target


# --- every dataset with a shipped config and a published meta CSV ------------------------------------
@pytest.mark.parametrize("dataset", sorted(DATASETS))
def test_shipped_config_reads_iqa_pytorchs_meta_csv_unchanged(dataset, tmp_path):
    spec = DATASETS[dataset]
    meta = copy_excerpt(spec, tmp_path / "meta_info")
    table = csv_rows(meta)[spec.dropped:]  # dataset row r = CSV data row r + dropped
    names = [r[spec.image_column] for r in table]
    images = tmp_path / "images"
    write_images(images, names)  # LIVE Challenge: its 7 leading 'training' images are NOT on disk
    split_file = tmp_path / "split.pkl"
    if spec.split is not None:
        splits = write_split_pickle(spec.split, split_file)
    else:  # no published split pickle: one in our layout (train / empty val / test)
        splits = {1: {"train": list(range(32)), "val": [], "test": list(range(32, len(table)))}}
        split_file.write_bytes(pickle.dumps(splits))

    sections = shipped_sections(spec.config)
    assert set(sections) == {"train", "val"}
    for phase, section in sections.items():
        assert section["meta_info_file"].endswith("/" + spec.csv)  # same file name as IQA-PyTorch's
        assert section["mos_range"] == list(spec.mos_range) and section["lower_better"] is spec.lower_better
        assert section["mos_normalize"] is True
        ds = build_dataset(with_paths(section, images, meta, split_file), phase, f"datasets.{phase}")
        rows = phase_rows(splits, phase)
        assert rows and ds.rows == rows, phase
        assert [ds.image_name(r) for r in rows] == [names[r] for r in rows]
        assert [ds.mos(r) for r in rows] == [float(table[r][spec.mos_column]) for r in rows]
        labels = [float(ds.labels[r]) for r in rows]
        assert labels == pytest.approx([expected_label(float(table[r][spec.mos_column]), spec) for r in rows],
                                       rel=1e-6, abs=1e-7)
        assert all(0 <= v <= 1 for v in labels)  # the configs' ranges hold IQA-PyTorch's scores


def test_the_recorded_split_structure_is_the_real_pickles(tmp_path):
    """The two small published pickles are kept verbatim: our restricted unpickler reads them, and
    their published sizes match the recorded structure the other tests restrict."""
    koniq = {k: read_split_pickle(FIXTURES / "koniq10k_official.pkl", k) for k in (1,)}
    assert {p: len(v) for p, v in koniq[1].items()} == {"train": 7058, "val": 1000, "test": 2015}
    assert sum(len(v) for v in koniq[1].values()) == 10073
    assert sorted(koniq[1]["train"] + koniq[1]["val"] + koniq[1]["test"]) == list(range(10073))
    livec = {k: read_split_pickle(FIXTURES / "livechallenge_seed123.pkl", k) for k in range(1, 11)}
    for split in livec.values():  # 1,169 CSV rows - 7 'training' images = 1,162 rows, 930 + 232
        assert {p: len(v) for p, v in split.items()} == {"train": 930, "val": 232, "test": 0}
        assert sorted(split["train"] + split["val"]) == list(range(1162))
    for name, real in (("koniq10k_official", koniq), ("livechallenge_seed123", livec)):
        rec = recorded_split(name)
        assert rec["keys"] == sorted(real)
        for k, split in real.items():
            for phase, part in rec["splits"][str(k)].items():
                assert part["size"] == len(split[phase]) and part["first"] == split[phase][:10]
                assert part["in_excerpt"] == [r for r in split[phase] if r < rec["excerpt_rows"]]
    assert "test" not in recorded_split("livechallenge_seed123")["splits"]["1"]  # as published


def test_livec_csv_keeps_its_7_training_images_outside_every_split(tmp_path):
    rows = csv_rows(FIXTURES / "meta_info_LIVEChallengeDataset.csv")
    assert [r["img_name"] for r in rows[:7]] == [f"t{i}.bmp" for i in range(1, 8)]
    images = tmp_path / "images"
    write_images(images, [r["img_name"] for r in rows[7:]])
    section = shipped_sections("livec")["val"]
    opt = {k: v for k, v in with_paths(section, images, FIXTURES / DATASETS["livec"].csv, None).items()
           if k not in ("split_file", "split_index")}
    ds = build_dataset(opt, "test", "datasets.test")  # no split: every benchmark row, none of the 7
    assert [ds.image_name(r) for r in ds.rows] == [r["img_name"] for r in rows[7:]]
    assert ds.csv_row(0) == 7


# --- KonIQ: IQA-PyTorch's split codes ------------------------------------------------------------------
def koniq_setup(tmp_path: Path):
    spec = DATASETS["koniq"]
    meta = copy_excerpt(spec, tmp_path / "meta_info")
    table = csv_rows(meta)
    images = tmp_path / "images"
    write_images(images, [r["img_name"] for r in table])
    sections = {phase: {k: v for k, v in with_paths(s, images, meta, None).items()
                        if k not in ("split_file", "split_index")}
                for phase, s in shipped_sections("koniq").items()}
    return meta, table, sections


@pytest.mark.parametrize("column", ["split", "official_split"])
def test_koniq_split_codes_give_the_published_official_split(tmp_path, column, caplog):
    """The CSV's ``split`` codes (0 train, 1 val, 2 test) and the published koniq10k_official.pkl agree
    row for row; ``official_split`` finds IQA-PyTorch's ``split`` column (and says so)."""
    meta, table, sections = koniq_setup(tmp_path)
    assert {r["split"] for r in table} == {"0", "1", "2"}
    official = {int(k): {p: v["in_excerpt"] for p, v in parts.items()}
                for k, parts in recorded_split("koniq10k_official")["splits"].items()}[1]
    caplog.set_level(logging.INFO, logger="pyiqa")
    for phase in ("train", "val", "test"):
        section = {**sections["train" if phase == "train" else "val"], "split_column": column}
        ds = build_dataset(section, phase, f"datasets.{phase}")
        assert ds.rows == sorted(official[phase])
        code = {"train": "0", "val": "1", "test": "2"}[phase]
        assert [ds.image_name(r) for r in ds.rows] == [r["img_name"] for r in table if r["split"] == code]
    assert ("IQA-PyTorch's name for the official split" in caplog.text) == (column == "official_split")


@pytest.mark.parametrize("words", [("train", "val", "test"), ("training", "validation", "test"),
                                   ("Train", "VAL", "test")])
def test_koniq_split_column_of_words_reads_as_before(tmp_path, words):
    """Our older CSVs wrote words (train/val/test; KonIQ's own training/validation/test): same rows."""
    meta, table, sections = koniq_setup(tmp_path)
    with open(meta, newline="") as f:
        lines = list(csv.reader(f))
    for line in lines[1:]:
        line[3] = words[int(line[3])]
    with open(meta, "w", newline="") as f:
        csv.writer(f).writerows(lines)
    for phase, code in (("train", "0"), ("val", "1"), ("test", "2")):
        ds = build_dataset({**sections["val"], "split_column": "split"}, phase, f"datasets.{phase}")
        assert [ds.image_name(r) for r in ds.rows] == [r["img_name"] for r in table if r["split"] == code]


def test_a_split_code_outside_0_1_2_names_the_row_and_value(tmp_path):
    meta, table, sections = koniq_setup(tmp_path)
    meta.write_text(meta.read_text().replace("10009096245.jpg,77.24375,0.556217750099,0,",
                                             "10009096245.jpg,77.24375,0.556217750099,3,"))
    with pytest.raises(DataError, match=r"row 3 \(line 5\) has '3' in split column 'split'.*codes 0 \(tr"):
        build_dataset({**sections["train"], "split_column": "split"}, "train", "datasets.train")


# --- FLIVE and AVA: layouts from IQA-PyTorch's processing scripts (their CSVs are not in the mirror) ----
def test_flive_official_split_column_in_iqa_pytorchs_layout(tmp_path):
    """Header and codes as IQA-PyTorch's scripts/process_flive.py writes them ('img_name/patch_name', mos,
    split 0/1/2); which rows carry which code is the published flive_official.pkl's. Names and MOS
    are invented (the CSV itself is not in the mirror)."""
    parts = {p: v["in_excerpt"] for p, v in recorded_split("flive_official")["splits"]["1"].items()}
    code = {r: c for c, p in enumerate(("train", "val", "test")) for r in parts[p]}
    n = recorded_split("flive_official")["excerpt_rows"]
    meta = tmp_path / "meta_info_FLIVEDataset.csv"
    names = [f"flive/row{r:03d}.jpg" for r in range(n)]
    with open(meta, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["img_name/patch_name", "mos", "split"])
        w.writerows([names[r], 40 + r / 2, code[r]] for r in range(n))
    write_images(tmp_path / "db", names)
    split_file = tmp_path / "flive_official.pkl"
    write_split_pickle("flive_official", split_file)
    for phase, section in shipped_sections("flive").items():
        assert section["split_column"] == "official_split"
        by_column = build_dataset(with_paths(section, tmp_path / "db", meta, None), phase, phase)
        assert by_column.rows == sorted(parts[phase])
        assert by_column.labels[parts[phase][0]] == pytest.approx((40 + parts[phase][0] / 2) / 100)
        by_file = {k: v for k, v in with_paths(section, tmp_path / "db", meta, split_file).items()
                   if k != "split_column"}
        assert build_dataset(by_file, phase, phase).rows == parts[phase]


def test_ava_official_split_in_iqa_pytorchs_layout(tmp_path):
    """Header as IQA-PyTorch's scripts/process_ava.py (commit 7c4ac4a) writes it, 'official split' coded
    0 train / 2 test (the 5% val part lives only in the pickle); which rows are test is the published
    ava_official_ilgnet.pkl's. Names and votes are invented (the CSV is not in the mirror). As
    IQA-PyTorch's AVADataset: the last val_num train rows validate; with the split file, the last
    val_num rows of its val list validate and the rest of that list trains."""
    rec = recorded_split("ava_official_ilgnet")
    assert rec["keys"] == [1, 2]
    sizes = {p: v["size"] for p, v in rec["splits"]["1"].items()}
    assert sizes == {"train": 223818, "val": 11780, "test": 19930}
    parts = {p: v["in_excerpt"] for p, v in rec["splits"]["1"].items()}
    n = rec["excerpt_rows"]
    rng = np.random.default_rng(0)
    votes = rng.integers(0, 30, (n, 10))
    votes[:, 4] += 1
    names = [f"{100000 + r}.jpg" for r in range(n)]
    meta = tmp_path / "meta_info_AVADataset.csv"
    with open(meta, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["img_name", "MOS"] + [f"c{i}" for i in range(1, 11)]
                   + ["semantic_tag1", "semantic_tag2", "official split", "ILGnet split"])
        for r in range(n):
            mos = float(np.dot(np.arange(1, 11), votes[r]) / votes[r].sum())
            w.writerow([names[r], f"{mos:.3}", *votes[r], 0, 0, 2 if r in parts["test"] else 0, 0])
    write_images(tmp_path / "images", names)
    split_file = tmp_path / "ava_official_ilgnet.pkl"
    write_split_pickle("ava_official_ilgnet", split_file)
    val_num = 4
    train_codes = [r for r in range(n) if r not in parts["test"]]
    by_file = {"train": parts["train"] + parts["val"][:-val_num], "val": parts["val"][-val_num:],
               "test": parts["test"]}
    for phase, section in shipped_sections("ava").items():
        assert "split_file" not in section and "split_index" not in section  # the official split
        opt = {**with_paths(section, tmp_path / "images", meta, None), "val_num": val_num}
        ds = build_dataset(opt, phase, phase)
        assert ds.rows == {"train": train_codes[:-val_num], "val": train_codes[-val_num:]}[phase]
        r = ds.rows[0]
        assert float(ds.labels[r]) == pytest.approx(float(csv_rows(meta)[r]["MOS"]) / 10, rel=1e-6)
        assert torch.allclose(ds[0]["mos_dist"], torch.tensor(votes[r] / votes[r].sum(), dtype=torch.float32))
        assert build_dataset({**opt, "split_file": str(split_file)}, phase, phase).rows == by_file[phase]
    test_opt = {**with_paths(shipped_sections("ava")["val"], tmp_path / "images", meta, None),
                "val_num": val_num}
    assert build_dataset(test_opt, "test", "test").rows == sorted(parts["test"])


# --- real short training runs with the published files in place of ours -------------------------------
def short_run(name: str, backbone: Path, split_file: str) -> List[str]:
    items = [f"name={name}", "num_gpu=0", f"network.backbone={backbone}", "train.total_epoch=1",
             "train.scheduler.T_max=1", "logger.print_freq=1"]
    for phase in ("train", "val"):
        items += [f"datasets.{phase}.split_file={split_file}", f"datasets.{phase}.num_worker_per_gpu=0"]
    return items


@pytest.mark.parametrize("dataset,image_dir", [("koniq", "koniq10k/512x384"), ("livec", "livec/Images")])
def test_shipped_config_trains_with_the_published_files(dataset, image_dir, tmp_path, tiny_backbone,
                                                        monkeypatch):
    """pyiqa-train with the shipped config: IQA-PyTorch's meta CSV in place of ours (same name, under
    ./datasets/meta_info), its split pickle named with --force_yml, the images where the config looks."""
    from pyiqa.train import main
    spec = DATASETS[dataset]
    monkeypatch.chdir(tmp_path)
    meta = copy_excerpt(spec, tmp_path / "datasets" / "meta_info")
    table = csv_rows(meta)[spec.dropped:]
    write_images(tmp_path / "datasets" / image_dir, [r["img_name"] for r in table], size=240)
    splits = write_split_pickle(spec.split, tmp_path / "datasets" / "meta_info" / f"{spec.split}.pkl")
    main(["-opt", str(CONFIGS / f"{spec.config}.yml"), "--root", str(tmp_path), "--force_yml",
          *short_run(f"published_{dataset}", tiny_backbone, f"./datasets/meta_info/{spec.split}.pkl")])
    exp = tmp_path / "experiments" / f"published_{dataset}"
    latest = torch.load(exp / "models" / "net_latest.pth", map_location="cpu", weights_only=True)
    assert latest["iter"] == len(splits[1]["train"]) // 8  # one epoch, batch 8, drop_last
    log = next(exp.glob(f"train_published_{dataset}_*.log")).read_text()
    for phase in ("train", "val"):
        assert (f"phase={phase}): {len(splits[1][phase])} images from split file "
                f"'./datasets/meta_info/{spec.split}.pkl', split 1, '{phase}'") in log
    assert "t1.bmp" not in log and "out of range" not in log
