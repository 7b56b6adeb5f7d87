"""Option parsing: safe YAML, overrides without eval, unknown keys with suggestions, legacy keys."""
from __future__ import annotations

import pytest

from pyiqa.archs import build_network
from pyiqa.data import build_dataset
from pyiqa.utils.errors import ConfigError
from pyiqa.engine.options import parse_options, validate_options
from pyiqa.utils.options import apply_overrides

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
                                  "name=__import__('os').getcwd()", "datasets.val.mos_range=[1, 2]"],
                           is_train=True)
    assert new.train.total_iter == 7
    assert new.train.optim["lr"] == 5e-4
    assert new.network["backbone"] == "random"
    assert new.name == "__import__('os').getcwd()"  # a string, never evaluated
    assert new.datasets["val"]["mos_range"] == [1, 2]
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


# ------------------------------------------------------------------------------ start-up value checks
@pytest.mark.parametrize("dotted,value,message", [
    ("datasets.train.batch_size_per_gpu", "eight", r"'datasets\.train\.batch_size_per_gpu' must be an integer >= 1, got 'eight'"),
    ("datasets.train.batch_size_per_gpu", 0, r"'datasets\.train\.batch_size_per_gpu' must be an integer >= 1, got 0"),
    ("datasets.val.batch_size_per_gpu", 2.0, r"'datasets\.val\.batch_size_per_gpu' must be an integer >= 1, got 2\.0"),
    ("datasets.val.num_worker_per_gpu", -1, r"'datasets\.val\.num_worker_per_gpu' must be an integer >= 0, got -1"),
    ("datasets.train.use_shuffle", "yes please", r"'datasets\.train\.use_shuffle' must be true or false"),
    ("train.optim.lr", -1, r"'train\.optim\.lr' must be a finite number > 0, got -1"),
    ("train.optim.lr", float("nan"), r"'train\.optim\.lr' must be a finite number > 0, got nan"),
    ("train.optim.lr", float("inf"), r"'train\.optim\.lr' must be a finite number > 0, got inf"),
    ("train.optim.lr", "abc", r"'train\.optim\.lr' must be a finite number > 0, got 'abc'"),
    ("train.optim.lr_adapter", 0, r"'train\.optim\.lr_adapter' must be a finite number > 0, got 0"),
    ("train.optim.weight_decay", -0.1, r"'train\.optim\.weight_decay' must be a finite number >= 0"),
    ("train.optim.betas", [0.9, 1.5], r"'train\.optim' is not valid for Adam: .*beta"),
    ("train.optim.type", "Adamm", r"Unknown 'train\.optim\.type' 'Adamm'\. Did you mean 'Adam'"),
    ("train.optim", "Adam", r"'train\.optim' must be a mapping with a 'type' key"),
    ("logger.print_freq", 0, r"'logger\.print_freq' must be an integer >= 1, got 0"),
    ("logger.save_latest_freq", 0, r"'logger\.save_latest_freq' must be an integer >= 1, got 0"),
    ("logger.save_checkpoint_freq", 2.5, r"'logger\.save_checkpoint_freq' must be an integer >= 1, got 2\.5"),
    ("logger.save_latest_freq", "1e3", r"'logger\.save_latest_freq' must be an integer >= 1, got '1e3' "
                                       r"\(YAML reads 1e3 as text.*!!float 1e3"),
    ("val.val_freq", 0, r"'val\.val_freq' must be an integer >= 1, got 0"),
    ("train.total_iter", 0, r"'train\.total_iter' must be an integer >= 1, got 0"),
    ("train.total_epoch", 0, r"'train\.total_epoch' must be an integer >= 1, got 0"),
    ("train.warmup_iter", -2, r"'train\.warmup_iter' must be an integer >= -1, got -2"),
    ("train.grad_clip_norm", 0, r"'train\.grad_clip_norm' must be a finite number > 0, got 0"),
    ("train.grad_clip_norm", "big", r"'train\.grad_clip_norm' must be a finite number > 0, got 'big'"),
    ("num_gpu", "two", r"'num_gpu' must be an integer >= 0 \(0 = CPU\) or 'auto', got 'two'"),
    ("num_gpu", -1, r"'num_gpu' must be an integer >= 0"),
    ("manual_seed", "abc", r"'manual_seed' must be an integer"),
    ("manual_seed", 1.5, r"'manual_seed' must be an integer"),
    ("val.key_metric", "krcc", r"'val\.key_metric' is 'krcc', which is not one of val\.metrics: \['srcc', 'plcc'\]"),
    ("val.metrics.srcc.type", "calculate_sroc", r"Unknown metric type 'calculate_sroc'\. Did you mean 'calculate_srcc'"),
    ("val.metrics.plcc.fit_logistik", True, r"Unknown option 'val\.metrics\.plcc\.fit_logistik'\. Did you mean 'fit_logistic'"),
    ("val.metrics", {}, r"'val\.metrics' must map names to metrics"),
    ("train.scheduler", {"T_max": 3}, r"'train\.scheduler' must be a mapping with a 'type' key"),
    ("train.scheduler.type", "CosineLR", r"Unknown 'train\.scheduler\.type' 'CosineLR'"),
    ("train.scheduler.T_max", 0, r"'train\.scheduler\.T_max' must be an integer >= 1"),
    ("train.scheduler.eta_min", -1, r"'train\.scheduler\.eta_min' must be a finite number >= 0"),
    ("train.scheduler", {"type": "CosineAnnealingRestartLR", "periods": [5, 5], "restart_weights": [1]},
     r"'train\.scheduler\.restart_weights' must be a list of 2 numbers"),
    ("train.scheduler", {"type": "CosineAnnealingWarmRestarts", "T_0": 0}, r"'train\.scheduler\.T_0' must be an integer >= 1"),
    ("train.mos_loss_opt", {"loss_weight": 1}, r"'train\.mos_loss_opt' must be a mapping with a 'type' key"),
    ("train.mos_loss_opt.type", "MSE", r"Unknown loss type 'MSE'.*Known loss types"),
    ("train.mos_loss_opt.loss_weight", "heavy", r"MSELoss: 'loss_weight' must be a finite number"),
    ("train.metric_loss_opt", {"type": "PLCCLos"}, r"Unknown loss type 'PLCCLos'\. Did you mean 'PLCCLoss'"),
    ("datasets.train", None, r"'datasets\.train' must be a mapping with a 'type' key"),
])
def test_bad_values_are_refused_at_start_up(opt, dotted, value, message):
    *parents, key = dotted.split(".")
    node = opt
    for k in parents:
        node = node[k]
    node[key] = value
    with pytest.raises(ConfigError, match=message):
        validate_options(opt, is_train=True)


def test_missing_val_section_is_allowed(opt):
    del opt["val"]
    validate_options(opt, is_train=True)


def test_plcc_loss_needs_two_images_per_batch(opt):
    opt["train"]["metric_loss_opt"] = {"type": "PLCCLoss", "loss_weight": 1.0}
    validate_options(opt, is_train=True)
    opt["datasets"]["train"]["batch_size_per_gpu"] = 1
    with pytest.raises(ConfigError, match=r"'train\.metric_loss_opt' \(PLCCLoss\) needs at least 2 images per "
                                          r"batch, but 'datasets\.train\.batch_size_per_gpu' is 1"):
        validate_options(opt, is_train=True)


@pytest.mark.parametrize("changes", [
    {"val_freq": 200.0, "save_latest_freq": 1000.0},         # the release's !!float values
    {"lr": "2e-4", "lr_score_level": "1e-2"},                 # YAML 1.1 reads 2e-4 as a string
    {"total_iter": 2000000, "total_epoch": 50},               # both set: total_epoch wins
    {"num_gpu": "auto", "manual_seed": 0, "warmup_iter": -1, "grad_clip_norm": None},
])
def test_accepted_values(opt, changes):
    for key, value in changes.items():
        section = {"val_freq": opt["val"], "save_latest_freq": opt["logger"], "lr": opt["train"]["optim"],
                   "lr_score_level": opt["train"]["optim"], "num_gpu": opt, "manual_seed": opt}.get(key, opt["train"])
        section[key] = value
    validate_options(opt, is_train=True)


def test_restart_scheduler_and_metric_loss_validate(opt):
    opt["train"]["scheduler"] = {"type": "CosineAnnealingRestartLR", "periods": [4, 8],
                                 "restart_weights": [1, 0.5], "eta_min": 1e-7}
    opt["train"]["metric_loss_opt"] = {"type": "PLCCLoss", "loss_weight": 1.0}
    validate_options(opt, is_train=True)


def test_duplicate_yaml_key_names_file_key_and_both_lines(tmp_path):
    path = tmp_path / "dup.yml"
    path.write_text("name: dup\ntrain:\n  optim:\n    type: Adam\n    lr: 1.0e-4\n\n    lr: 1.0e-3\n")
    with pytest.raises(ConfigError, match=r"dup\.yml: key 'lr' is given twice in the same mapping, on lines 5 "
                                          r"and 7"):
        parse_options(path)
    path.write_text("base: &b {lr: 1}\nother:\n  <<: *b\n  lr: 2\n")  # a merge key may be overridden
    from pyiqa.utils.options import load_yaml
    assert load_yaml(path)["other"] == {"lr": 2}


@pytest.mark.parametrize("path", ["options/train/UniQA/livec.yml", "options/train/UniQA/koniq.yml"])
def test_shipped_configs_follow_the_release_recipe(path):
    """The release's recipe on the files prepare_dataset.py writes; the release's and pyiqa's split
    files are named as drop-in alternatives (every config's datasets: tests/data/prepare)."""
    from helpers import REPO
    opt, notices = parse_options(REPO / path, is_train=True)
    assert notices == []
    livec = "livec" in path
    assert opt.val.val_freq == (200 if livec else 2000)
    assert opt.train.total_epoch == (50 if livec else 20)
    assert opt.train.optim == {"type": "Adam", "lr": 2e-4, "weight_decay": 0}
    split = "livec_ratio802_seed123.pkl" if livec else "koniq10k_ratio802_seed123.pkl"
    for phase in ("train", "val"):
        assert opt.datasets[phase]["split_file"] == f"./datasets/meta_info/{split}"
    text = (REPO / path).read_text()
    for alternative in (["livec_10split.pkl", "livechallenge_seed123.pkl"] if livec else
                        ["koniq_10split.pkl", "koniq10k_seed123.pkl"]):
        assert alternative in text  # in a comment
