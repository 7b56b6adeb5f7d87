"""The typed experiment config: one declaration per key, resolved once, stored as resolved, documented
from the same declarations."""
from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from helpers import REPO
from pyiqa.engine.options import (DEFAULT_VIEWS, ExperimentConfig, LoggerOptions, TrainOptions, key_table,
                                  parse_experiment, parse_options)
from pyiqa.engine.run_options import RunLoggerOptions, RunOptions
from pyiqa.utils.errors import ConfigError
from pyiqa.utils.options import load_yaml

TRAIN_CONFIGS = sorted((REPO / "pyiqa" / "configs" / "train" / "UniQA").glob("*.yml"))
TEST_CONFIGS = sorted((REPO / "pyiqa" / "configs" / "test" / "UniQA").glob("*.yml"))
RELEASE = sorted((REPO / "tests" / "fixtures" / "release").glob("*.yml"))


@pytest.mark.parametrize("path", TRAIN_CONFIGS + RELEASE, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_saved_options_parse_back_to_the_same_config(path):
    """What a run stores (``<name>_options.yml``, checkpoints' ``config``) is the resolved config, and
    reading it back gives the very same typed config: resuming or re-running from it changes nothing."""
    config, _ = parse_options(path, is_train=True)
    saved = config.to_dict()
    again, notices = parse_experiment(saved, is_train=True)
    assert again == config and notices == []  # legacy keys are not written back
    assert saved["precision"] in ("fp32", "auto") and saved["val"]["key_metric"] in saved["val"]["metrics"]


@pytest.mark.parametrize("path", TEST_CONFIGS, ids=lambda p: p.name)
def test_test_configs_parse_and_leave_precision_to_the_checkpoint(path):
    config, notices = parse_options(path, is_train=False)
    assert notices == [] and config.train is None
    raw = load_yaml(path)
    assert config.precision == raw.get("precision")  # None: test.py reads the checkpoint's record


def test_defaults_are_resolved_once_where_they_depend_on_other_keys():
    config, _ = parse_options(REPO / "options/train/UniQA/demo.yml",
                              ["train.feature_cache=true", "network.test_crop=center"], is_train=True)
    assert config.precision == "auto" and config.train.views_per_image == DEFAULT_VIEWS
    plain, _ = parse_options(REPO / "options/train/UniQA/demo.yml", ["precision=~"], is_train=True)
    assert plain.precision == "fp32" and plain.train.views_per_image is None
    assert plain.val.key_metric == "srcc" and plain.logger.save_checkpoint_freq is None


def test_sections_are_typed_and_frozen():
    config, _ = parse_options(REPO / "tests/fixtures/release/koniq.yml", is_train=True)
    assert isinstance(config, RunOptions) and isinstance(config.logger, RunLoggerOptions)
    assert isinstance(config.logger, LoggerOptions) and isinstance(config.train, TrainOptions)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.train.total_epoch = 3
    assert config.loader("train").batch_size_per_gpu == 8 and config.loader("val").use_shuffle is True


def test_unknown_keys_still_name_the_closest_valid_one():
    config, _ = parse_options(REPO / "options/train/UniQA/demo.yml", is_train=True)
    saved = config.to_dict()
    saved["logger"]["save_lastest_freq"] = 5
    with pytest.raises(ConfigError, match=r"Unknown option 'logger\.save_lastest_freq'\. Did you mean "
                                          r"'save_latest_freq'\?"):
        parse_experiment(saved, is_train=True)
    with pytest.raises(ConfigError, match=r"Unknown model_type 'SRModel'"):
        parse_experiment({**config.to_dict(), "model_type": "SRModel"}, is_train=True)


def test_readme_key_table_is_generated_from_the_declarations():
    text = (REPO / "README.md").read_text(encoding="utf-8")
    assert "\n".join(key_table()) in text
    for field in dataclasses.fields(TrainOptions):
        assert f"| `train.{field.name}` |" in text
    check = subprocess.run([sys.executable, str(REPO / "scripts" / "key_table.py"), "--check"],
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
