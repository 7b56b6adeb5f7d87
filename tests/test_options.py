"""Option parsing: safe YAML, overrides without eval, unknown keys with suggestions, legacy keys."""
from __future__ import annotations

import pytest

from pyiqa.archs import build_network
from pyiqa.data import build_dataset
from pyiqa.utils.errors import ConfigError
from pyiqa.utils.options import apply_overrides, parse_options, validate_options

from helpers import train_options, write_yaml


@pytest.fixture()
def opt(demo_data, tiny_backbone):
    return train_options("opts", demo_data, tiny_backbone)


def test_release_layout_validates_and_lists_legacy_notices(opt):
    notices = validate_options(opt, is_train=True)
    assert any("val.save_img" in n for n in notices)
    assert any("logger.wandb" in n for n in notices)
    assert any("dist_params.port" in n for n in notices)


@pytest.mark.parametrize("section,key,suggest", [
    ("", "manual_sed", "manual_seed"),
    ("train", "total_iters", "total_iter"),
    ("val", "key_metrc", "key_metric"),
    ("logger", "print_frq", "print_freq"),
    ("path", "pretrain_network", "pretrain_network_g"),
])
def test_unknown_key_names_it_and_suggests(opt, section, key, suggest):
    (opt[section] if section else opt)[key] = 1
    dotted = f"{section}.{key}" if section else key
    with pytest.raises(ConfigError, match=rf"'{dotted}'.*Did you mean '{suggest}'"):
        validate_options(opt, is_train=True)


def test_unknown_network_and_dataset_keys_are_rejected(opt, caplog):
    net = dict(opt["network"], embeding_dim=3)
    with pytest.raises(ConfigError, match=r"network\.embeding_dim.*Did you mean 'embedding_dim'"):
        build_network(net)
    ds = dict(opt["datasets"]["val"], mos_normalise=True)
    with pytest.raises(ConfigError, match=r"datasets\.val_koniq\.mos_normalise.*mos_normalize"):
        build_dataset(ds, "val", where="datasets.val_koniq")


def test_unknown_type_lists_known_names(opt):
    opt["network"]["type"] = "UniQA_Adaptr"
    with pytest.raises(ConfigError, match=r"Unknown arch type 'UniQA_Adaptr'.*Known arch types:.*UniQA"):
        build_network(opt["network"])


def test_missing_required_and_bad_values(opt):
    del opt["train"]["mos_loss_opt"]
    with pytest.raises(ConfigError, match=r"Missing required option 'train.mos_loss_opt'"):
        validate_options(opt, is_train=True)
    opt["train"]["mos_loss_opt"] = {"type": "MSELoss"}
    opt["precision"] = "int8"
    with pytest.raises(ConfigError, match=r"'precision' must be one of"):
        validate_options(opt, is_train=True)
    opt["precision"] = "fp32"
    opt["datasets"]["validation"] = opt["datasets"]["val"]
    with pytest.raises(ConfigError, match=r"datasets\.validation"):
        validate_options(opt, is_train=True)


def test_force_yml_overrides_are_parsed_as_yaml_not_code(opt, tmp_path):
    path = write_yaml(tmp_path / "x.yml", opt)
    new, _ = parse_options(path, ["train.total_iter=7", "train.optim.lr=5e-4", "network.backbone=random",
                                  "name=__import__('os').getcwd()", "val.metrics.srcc.fit=[1, 2]"],
                           is_train=False)
    assert new["train"]["total_iter"] == 7
    assert new["train"]["optim"]["lr"] == 5e-4
    assert new["network"]["backbone"] == "random"
    assert new["name"] == "__import__('os').getcwd()"  # a string, never evaluated
    assert new["val"]["metrics"]["srcc"]["fit"] == [1, 2]
    with pytest.raises(ConfigError, match="key.sub=value"):
        apply_overrides(opt, ["train.total_iter"])
    with pytest.raises(ConfigError, match="'name' is not a mapping"):
        apply_overrides(opt, ["name.x=1"])


def test_bad_yaml_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match=r"bad\.yml is not valid YAML"):
        parse_options(bad)
    with pytest.raises(ConfigError, match="Option file not found"):
        parse_options(tmp_path / "missing.yml")
