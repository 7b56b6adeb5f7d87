"""The split runner plans with the rows training will use: ``section_split`` asks the section's dataset
class, so for a split pickle, a split column of words or of IQA-PyTorch's codes 0/1/2, LIVE Challenge's 7
leading rows, AVA's official split and the demo's own split file it gives what the built dataset selects,
and both agree with the files read independently here (csv/json modules)."""
from __future__ import annotations

import csv
import importlib
import json
import pickle
import shutil
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
import yaml
from PIL import Image

from helpers import REPO
from pyiqa.data import build_dataset
from pyiqa.data.meta_info import read_split_pickle
from pyiqa.data.prepare import get_preparer, prepare
from pyiqa.data.splits import phase_part
from pyiqa.protocols.split_configs import meta_csv, section_split, validation_part
from pyiqa.utils.errors import DataError

FIXTURES = REPO / "tests" / "fixtures" / "iqa_pytorch"  # IQA-PyTorch's published files (excerpts)
CONFIGS = REPO / "pyiqa" / "configs" / "train" / "UniQA"
PHASES = ("train", "val", "test")


def csv_rows(path: Path) -> List[Dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def published_split(name: str) -> Dict[str, List[int]]:
    """Split 1 of an IQA-PyTorch pickle, restricted to the excerpt's rows (see its *.split.json)."""
    parts = json.loads((FIXTURES / f"{name}.split.json").read_text())["splits"]["1"]
    return {p: parts[p]["in_excerpt"] if p in parts else [] for p in PHASES}


def write_images(root: Path, names: List[str]) -> None:
    rng = np.random.default_rng(0)
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(root / name)


def shipped(config: str, phase: str, **paths) -> dict:
    """The shipped training config's section for ``phase`` without its split keys, paths replaced."""
    section = yaml.safe_load((CONFIGS / f"{config}.yml").read_text())["datasets"][phase]
    section = {k: v for k, v in section.items() if k not in ("split_file", "split_index", "split_column")}
    return {**section, **{k: str(v) for k, v in paths.items()}}


def agree(section: dict, phases=PHASES) -> Dict[str, List[int]]:
    """The runner's split of ``section``; each phase's built dataset reads exactly its part."""
    split, source = section_split(section, "datasets.val")
    for phase in phases:
        ds = build_dataset(section, phase, f"datasets.{phase}")
        assert ds.rows == split[phase_part(split, phase, section.get("override_phase"))], phase
        assert ds.split_source.startswith(source)
    return split


@pytest.fixture
def koniq(tmp_path):
    """IQA-PyTorch's KonIQ meta CSV excerpt (its ``split`` column codes 0/1/2), with its images."""
    meta = tmp_path / "meta_info_KonIQ10kDataset.csv"
    shutil.copyfile(FIXTURES / meta.name, meta)
    table = csv_rows(meta)
    write_images(tmp_path / "images", [r["img_name"] for r in table])
    return shipped("koniq", "val", dataroot_target=tmp_path / "images", meta_info_file=meta), table


def test_split_pickle(koniq, tmp_path):
    section, _ = koniq
    published = published_split("koniq10k_official")
    (tmp_path / "koniq10k_official.pkl").write_bytes(pickle.dumps({1: published}))
    split = agree({**section, "split_file": str(tmp_path / "koniq10k_official.pkl"), "split_index": 1})
    assert split == published


@pytest.mark.parametrize("column", ["split", "official_split"])
def test_split_column_of_iqa_pytorchs_codes(koniq, column):
    """KonIQ's ``split`` column as IQA-PyTorch publishes it (0 train, 1 val, 2 test): the runner read
    only the words before, so it saw no rows here where the dataset saw the official split."""
    section, table = koniq
    split = agree({**section, "split_column": column})
    codes = {p: [i for i, r in enumerate(table) if r["split"] == c] for p, c in zip(PHASES, "012")}
    assert split == codes and all(codes.values())
    assert split == {p: sorted(v) for p, v in published_split("koniq10k_official").items()}
    val = {**section, "split_column": column}
    assert validation_part({"val": val, "test": val}, 1) == ("val", "")  # a real val part: honest


def test_split_column_of_words(koniq):
    section, table = koniq
    meta = Path(section["meta_info_file"])
    with open(meta, newline="") as f:
        lines = list(csv.reader(f))
    for line in lines[1:]:
        line[3] = ("training", "VAL", "test")[int(line[3])]
    with open(meta, "w", newline="") as f:
        csv.writer(f).writerows(lines)
    split = agree({**section, "split_column": "split"})
    assert split == {p: [i for i, r in enumerate(table) if r["split"] == c] for p, c in zip(PHASES, "012")}


def test_livec_published_pickle_counts_rows_after_the_7_training_images(tmp_path):
    """IQA-PyTorch's LIVE Challenge CSV (t1.bmp..t7.bmp first) and its train/val pickle over the rows after
    them: the runner drops the 7 rows as LIVEChallengeDataset does, and refuses a test part as it does."""
    meta = tmp_path / "meta_info_LIVEChallengeDataset.csv"
    shutil.copyfile(FIXTURES / meta.name, meta)
    names = [r["img_name"] for r in csv_rows(meta)]
    assert names[:7] == [f"t{i}.bmp" for i in range(1, 8)]
    write_images(tmp_path / "images", names[7:])  # the 7 training images are not on disk
    published = published_split("livechallenge_seed123")
    (tmp_path / "livec.pkl").write_bytes(pickle.dumps({1: {p: published[p] for p in ("train", "val")}}))
    section = {**shipped("livec", "val", dataroot_target=tmp_path / "images", meta_info_file=meta),
               "split_file": str(tmp_path / "livec.pkl")}
    split = agree(section, ("train", "val"))
    assert split == published
    assert [build_dataset(section, "val", "v").image_name(r) for r in split["val"]] == \
        [names[7 + r] for r in published["val"]]
    with pytest.raises(DataError, match=r"datasets\.test: .*has no 'test' rows.*override_phase: val"):
        build_dataset(section, "test", "datasets.test")
    with pytest.raises(DataError, match=r"datasets\.test: .*has no 'test' rows.*override_phase: val"):
        validation_part({"val": section, "test": section}, 1)
    assert validation_part({"val": section, "test": {**section, "override_phase": "val"}}, 1)[0] == "val+test"


@pytest.fixture
def livec_prepared(tmp_path):
    """Our LIVE Challenge files from the release layout (real rows): a CSV whose 7 leading rows have empty
    split cells, split columns and pickles over the rows after them."""
    importlib.import_module("layouts.livec").write_real(tmp_path / "livec")
    report = prepare("livec", tmp_path / "livec", tmp_path / "meta", few_labels=())
    meta = tmp_path / "meta" / get_preparer("livec").meta_file
    return shipped("livec", "val", dataroot_target=report.dataroot, meta_info_file=meta), meta


@pytest.mark.parametrize("ratio", [802, 712])
def test_livec_split_column_and_pickle_skip_the_7_rows_outside_every_split(livec_prepared, ratio):
    section, meta = livec_prepared
    rows = csv_rows(meta)
    column = f"ratio{ratio}_seed123_split_03"
    assert [r[column] for r in rows[:7]] == [""] * 7 and all(r[column] for r in rows[7:])
    by_column = agree({**section, "split_index": 3, "split_ratio": ratio})
    by_file = agree({**section, "split_file": str(meta.parent / f"livec_ratio{ratio}_seed123.pkl"), "split_index": 3})
    expected = {p: [i for i, r in enumerate(rows[7:]) if r[column] == p] for p in PHASES}
    assert by_column == by_file == expected  # dataset rows: CSV row - 7, in both sources
    # a val section over the column and a test section over the pickle compare row for row
    val = {**section, "split_index": 3, "split_ratio": ratio}
    test = {**section, "split_file": str(meta.parent / f"livec_ratio{ratio}_seed123.pkl"), "split_index": 3}
    part, note = validation_part({"val": val, "test": test}, 3)
    if ratio == 802:  # no val part: validation falls back to the test part
        assert part == "test" and "has no 'val' rows" in note
    else:
        assert (part, note) == ("val", "")
        part, note = validation_part({"val": val, "test": {**test, "override_phase": "val"}}, 3)
        assert part == "val+test" and f"share {len(expected['val'])} rows" in note


def test_a_class_that_keeps_the_7_rows_refuses_their_empty_cells_in_both(livec_prepared):
    """GeneralNRDataset does not drop LIVE Challenge's 7 rows, so their empty split cells are an error:
    the same one for the runner and for the dataset (no silent tolerance on one side only)."""
    section, _ = livec_prepared
    plain = {**section, "type": "GeneralNRDataset", "split_index": 1}
    message = r"row 0 \(line 2\) has '' in split column 'ratio802_seed123_split_01'"
    with pytest.raises(DataError, match=message):
        build_dataset(plain, "val", "datasets.val")
    with pytest.raises(DataError, match=message):
        section_split(plain, "datasets.val")


def test_ava_official_split_is_the_runners_too(tmp_path):
    """AVADataset without split keys reads its official split column; the runner now sees that split
    (it used to treat the section as 'every row'): a val part disjoint from the test part."""
    importlib.import_module("layouts.ava").write(tmp_path / "ava")
    report = prepare("ava", tmp_path / "ava", tmp_path / "meta", few_labels=())
    meta = tmp_path / "meta" / get_preparer("ava").meta_file
    section = {**shipped("ava", "val", dataroot_target=report.dataroot, meta_info_file=meta), "val_num": 2}
    split = agree(section)
    rows = csv_rows(meta)
    official = {p: [i for i, r in enumerate(rows) if r["official_split"] == c] for p, c in zip(PHASES, "012")}
    assert split == official and all(official.values())  # our CSV codes the official split 0/1/2
    assert validation_part({"val": section, "test": section}, 1) == ("val", "")


def test_demo_split_file_is_what_the_class_declares(demo_data):
    """The demo's defaults (its CSV, and its 80/20 pickle unless split columns are asked for) come from
    DemoIQADataset.source_options, through the registry; the runner never names the class."""
    root = str(demo_data["root"])
    section = {"type": "DemoIQADataset", "name": "demo", "dataroot_target": root, "split_index": 2}
    split = agree(section, ("train", "test"))
    assert split == read_split_pickle(demo_data["split_file"], 2)
    assert section_split(section, "datasets.val")[1] == f"split file '{demo_data['split_file']}', split 2"
    assert meta_csv(section, "datasets.val") == Path(demo_data["meta_info_file"])
    honest = agree({**section, "split_ratio": 712})
    table = csv_rows(Path(demo_data["meta_info_file"]))
    assert honest == {p: [i for i, r in enumerate(table) if r["ratio712_seed123_split_02"] == p] for p in PHASES}
