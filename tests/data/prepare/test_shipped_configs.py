"""Every dataset's shipped configs read what its preparer writes: prepare the published-layout fixture,
point the configs' paths at it (the one EDIT line and the meta folder) and build every dataset section."""
from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest

from helpers import REPO
from pyiqa.archs.model_cards import MODEL_CARDS
from pyiqa.data import build_dataset
from pyiqa.data.prepare import PREPARERS, get_preparer, prepare
from pyiqa.engine.options import parse_options
from pyiqa.utils.options import dataset_phase

#: preparer name -> config name, where the release named its config differently.
CONFIG_NAME = {"koniq10k": "koniq"}
META = "./datasets/meta_info/"


def config_paths(name: str):
    stem = CONFIG_NAME.get(name, name)
    return REPO / f"options/train/UniQA/{stem}.yml", REPO / f"options/test/UniQA/{stem}.yml"


def relocate(section: dict, dataroot: Path, meta: Path, preparer) -> dict:
    """The section as a user's edit makes it: the prepared folder instead of ./datasets/..."""
    section = dict(section)
    image_dir = Path(preparer.image_dir).parts
    assert Path(section["dataroot_target"]).parts[-len(image_dir):] == image_dir or not image_dir, \
        f"dataroot_target {section['dataroot_target']!r} should end in the image folder {preparer.image_dir!r}"
    section["dataroot_target"] = str(dataroot)
    assert section["meta_info_file"] == META + preparer.meta_file
    for key in ("meta_info_file", "split_file"):
        if section.get(key) is not None:
            assert section[key].startswith(META), (key, section[key])
            section[key] = str(meta / section[key][len(META):])
    return section


@pytest.mark.parametrize("name", sorted(PREPARERS))
def test_shipped_configs_build_their_datasets_from_prepared_files(name, tmp_path):
    preparer = get_preparer(name)
    importlib.import_module(f"layouts.{name}").write(tmp_path / name)
    report = prepare(name, tmp_path / name, tmp_path / "meta", few_labels=())
    built = {}
    for path, is_train in zip(config_paths(name), (True, False)):
        opt, notices = parse_options(path, is_train=is_train)
        assert notices == [], (path, notices)
        assert path.read_text().count("# EDIT") == 1, f"{path}: exactly one line to edit"
        assert opt.network["backbone"] == "./pretrained/UniQA_weight.pt"
        roots = {section["dataroot_target"] for section in opt.datasets.values()}
        assert len(roots) == 1, f"{path}: every section reads the one edited folder, got {roots}"
        for key, section in opt.datasets.items():
            phase = dataset_phase(key)
            ds = build_dataset(relocate(section, report.dataroot, tmp_path / "meta", preparer), phase,
                               f"datasets.{key}")
            assert len(ds) > 0
            assert ds.mos_column == preparer.mos_column and ds.lower_better == preparer.lower_better
            assert tuple(ds.mos_range) == tuple(map(float, preparer.mos_range))
            labels = np.array(list(ds.labels.values()))
            assert ((labels >= 0) & (labels <= 1)).all(), f"{path}: labels outside [0, 1]"
            built[(is_train, phase)] = set(ds.rows)
    # The test config evaluates rows the training config never trains on.
    assert built[(False, "test")] and not built[(True, "train")] & built[(False, "test")]


def test_every_adapter_card_has_its_training_config():
    adapter_cards = [card for card in MODEL_CARDS.values() if card.adapter_file]
    assert {CONFIG_NAME.get(n, n) for n in PREPARERS} <= {Path(c.train_config).stem for c in adapter_cards}
    for card in adapter_cards:
        assert (REPO / card.train_config).is_file(), card.name
