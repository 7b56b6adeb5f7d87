"""A dataset's messages name the config section it was built from (``datasets.val_koniq``, not the phase's
``datasets.val``): DATASET_REGISTRY.build hands the constructor its config path; nothing rewrites the
messages afterwards."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import yaml
from PIL import Image

from helpers import REPO
from pyiqa.data import build_dataset
from pyiqa.data.general_nr_dataset import GeneralNRDataset
from pyiqa.utils.errors import ConfigError, DataError

KONIQ_CSV = REPO / "tests" / "fixtures" / "iqa_pytorch" / "meta_info_KonIQ10kDataset.csv"  # IQA-PyTorch's


@pytest.fixture
def val_koniq(tmp_path):
    """The shipped KonIQ val section over IQA-PyTorch's meta CSV excerpt and its images, with KonIQ's
    official split codes, as a ``datasets.val_koniq`` section of a cross-dataset validation."""
    meta = tmp_path / KONIQ_CSV.name
    shutil.copyfile(KONIQ_CSV, meta)
    rng = np.random.default_rng(0)
    (tmp_path / "images").mkdir()
    for line in meta.read_text().splitlines()[1:]:
        Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)).save(tmp_path / "images" / line.split(",")[0])
    section = yaml.safe_load((REPO / "pyiqa/configs/train/UniQA/koniq.yml").read_text())["datasets"]["val"]
    del section["split_file"], section["split_index"]
    return {**section, "dataroot_target": str(tmp_path / "images"), "meta_info_file": str(meta),
            "split_column": "split"}


def test_the_section_builds(val_koniq):
    assert len(build_dataset(val_koniq, "val", "datasets.val_koniq")) == 5  # KonIQ's 1 = val rows


@pytest.mark.parametrize("change,key", [
    ({"mos_range": None}, "mos_normalize"),           # GeneralNRDataset's own check
    ({"dataset_enlarge_ratio": 0}, "dataset_enlarge_ratio"),
    ({"override_phase": "dev"}, "override_phase"),    # row selection (pyiqa.data.splits)
    ({"split_index": True}, "split_index"),
    ({"augment": {"random_crop": "big"}}, "augment"),  # the transforms
    ({"mos_rnage": [0, 100]}, "mos_rnage"),          # the registry's unknown-key check
])
def test_config_errors_name_the_section(val_koniq, change, key):
    with pytest.raises(ConfigError, match=rf"datasets\.val_koniq\.{key}") as exc:
        build_dataset({**val_koniq, **change}, "val", "datasets.val_koniq")
    assert "'datasets.val." not in str(exc.value)


def test_data_errors_name_the_section_too(val_koniq, tmp_path):
    (tmp_path / "images" / "10043785683.jpg").unlink()  # one of KonIQ's 5 val images (code 1)
    with pytest.raises(DataError, match=r"^datasets\.val_koniq: 1 of the 5 images .* are missing"):
        build_dataset(val_koniq, "val", "datasets.val_koniq")


def test_the_constructor_itself_names_the_section(val_koniq):
    """No builder in between: the message is the constructor's own."""
    options = {k: v for k, v in val_koniq.items() if k not in ("type", "num_worker_per_gpu", "batch_size_per_gpu")}
    needs = r"^'datasets\.val_koniq\.mos_normalize' needs 'datasets\.val_koniq\.mos_range"
    with pytest.raises(ConfigError, match=needs):
        GeneralNRDataset(**{**options, "mos_range": None}, phase="val", where="datasets.val_koniq")
    with pytest.raises(ConfigError, match=r"^'datasets\.val\.mos_normalize'"):  # default: the phase's section
        GeneralNRDataset(**{**options, "mos_range": None}, phase="val")


@pytest.mark.parametrize("section", [
    {"type": "AVADataset", "name": "ava", "dataroot_target": ".", "meta_info_file": "m.csv", "val_num": -1},
    {"type": "AVADataset", "name": "ava", "dataroot_target": ".", "meta_info_file": "m.csv", "split_fle": "s"},
    {"type": "DemoIQADataset", "name": "demo", "dataroot_target": ".", "split_fle": "s"},
])
def test_every_dataset_class_names_its_section(section):
    with pytest.raises(ConfigError, match=r"'datasets\.val_other\.(val_num|split_fle)'"):
        build_dataset(section, "val", "datasets.val_other")


def test_a_config_cannot_set_where(val_koniq):
    with pytest.raises(ConfigError, match=r"'datasets\.val_koniq\.where' is not an option"):
        build_dataset({**val_koniq, "where": "datasets.val"}, "val", "datasets.val_koniq")
    with pytest.raises(ConfigError, match=r"Valid keys: \[(?!.*'where').*\]"):
        build_dataset({**val_koniq, "were": 1}, "val", "datasets.val_koniq")


def test_a_phase_key_that_contradicts_the_section_is_refused(val_koniq):
    """pyiqa sets every section's phase from its name, over any ``phase:`` written in it; a val section
    saying ``phase: test`` would silently read the val rows. The key saying the same is pyiqa's own saved
    options, accepted; another phase is refused, pointing to override_phase."""
    assert len(build_dataset({**val_koniq, "phase": "val"}, "val", "datasets.val_koniq")) == 5
    with pytest.raises(ConfigError, match=r"'datasets.val_koniq.phase: test': a section's phase comes from its "
                                          r"name .* write override_phase: test"):
        build_dataset({**val_koniq, "phase": "test"}, "val", "datasets.val_koniq")
    assert len(build_dataset({**val_koniq, "override_phase": "test"}, "val", "datasets.val_koniq")) == 7  # 2 = test
