"""Run-time options and runs that must end with one clear error, never a hang, a traceback or a lost file:
integer options beyond a sane bound, a crop too large to fit, an option file of binary bytes or a
device, ``val: null`` beside a validation set, a DataLoader worker that cannot send its batch (a file
size limit, as a full disk or /dev/shm gives) and an export over its own input."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from helpers import REPO, run_script, train_options, write_yaml
from pyiqa.engine.options import parse_options, validate_options
from pyiqa.utils.errors import ConfigError

pytestmark = pytest.mark.slow  # trains or runs installed commands in subprocesses: pytest -m 'not slow' skips it

TRAIN = str(REPO / "train.py")


@pytest.fixture
def opt(demo_data, tiny_backbone):
    return train_options("faults", demo_data, tiny_backbone)


@pytest.mark.parametrize("dotted,value,message", [
    ("train.total_iter", 1e100, r"'train\.total_iter' must be an integer >= 1 and at most 1,000,000,000"),
    ("train.total_iter", 10 ** 12, r"'train\.total_iter' must be an integer >= 1 and at most 1,000,000,000"),
    ("train.total_iter", 4.5, r"'train\.total_iter' must be an integer >= 1, got 4\.5"),
    ("train.total_epoch", float("inf"), r"'train\.total_epoch' must be an integer >= 1, got inf"),
    ("logger.print_freq", 2 ** 70, r"'logger\.print_freq' must be an integer >= 1 and at most"),
    ("datasets.train.augment.random_crop", 100000,
     r"'datasets\.train\.augment\.random_crop' is 100000: at most 8192 pixels per side"),
    ("datasets.val.augment", {"center_crop": [224, 50000]},
     r"'datasets\.val\.augment\.center_crop' is \[224, 50000\]: at most 8192"),
    # 10**6 workers forked until the machine stopped (a hang in the sweep)
    ("datasets.train.num_worker_per_gpu", 10 ** 6, r"'datasets\.train\.num_worker_per_gpu' must be an integer "
                                                   r">= 0 and at most 256"),
    ("val.val_at_start", "yes", r"'val\.val_at_start' must be true or false, got 'yes'"),
])
def test_integer_and_size_options_are_bounded(opt, dotted, value, message):
    node = opt
    *parents, key = dotted.split(".")
    for k in parents:
        node = node.setdefault(k, {})
    node[key] = value
    with pytest.raises(ConfigError, match=message):
        validate_options(opt, is_train=True)


def test_total_iter_1e100_from_the_command_line_is_refused_at_start_up(opt, tmp_path):
    yml = write_yaml(tmp_path / "x.yml", opt)
    proc = run_script([TRAIN, "-opt", str(yml), "--root", str(tmp_path), "--force_yml", "train.total_iter=1e100"],
                      cwd=tmp_path, check=False, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "'train.total_iter' must be an integer >= 1 and at most 1,000,000,000" in proc.stderr
    assert not (tmp_path / "experiments").exists()


def test_a_file_where_the_run_folder_goes_is_refused_and_kept(opt, tmp_path):
    """Before: exit 0, and the file was renamed to <name>_archived_<time> as if it were an old run."""
    place = tmp_path / "experiments" / "faults"
    place.parent.mkdir()
    place.write_text("my notes")
    yml = write_yaml(tmp_path / "x.yml", opt)
    proc = run_script([TRAIN, "-opt", str(yml), "--root", str(tmp_path)], cwd=tmp_path, check=False, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"'{place}' exists and is not a folder; the run writes its folder there" in proc.stderr
    assert place.read_text() == "my notes" and sorted(p.name for p in place.parent.iterdir()) == ["faults"]


def test_more_gpus_than_the_machine_has_is_refused(monkeypatch):
    from pyiqa.engine.run import select_device
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # the edge of the world: the hardware
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(ConfigError, match=r"'num_gpu' is 99 but this machine has 2 CUDA device\(s\)"):
        select_device(99, 0)
    assert select_device(2, 1) == torch.device("cuda", 1) and select_device("auto", 0) == torch.device("cuda", 0)


def test_option_file_that_is_not_yaml_text_is_one_error(tmp_path):
    binary = tmp_path / "weights.yml"
    binary.write_bytes(bytes(range(256)) * 8)
    with pytest.raises(ConfigError, match=r"weights\.yml is not UTF-8 text"):
        parse_options(binary)
    nul = tmp_path / "nul.yml"
    nul.write_bytes(b"name: x\x00\x00\n")
    with pytest.raises(ConfigError, match=r"nul\.yml holds NUL bytes"):
        parse_options(nul)
    with pytest.raises(ConfigError, match=r"/dev/zero is not a regular file"):
        parse_options("/dev/zero")  # would be read for ever
    huge = tmp_path / "huge.yml"
    huge.write_text("# padding\n" * 200_000)
    with pytest.raises(ConfigError, match=r"huge\.yml is 2,000,000 bytes; an options YAML is at most 1,048,576"):
        parse_options(huge)
    # through the real command: one line, no traceback
    proc = run_script([TRAIN, "-opt", str(binary), "--root", str(tmp_path)], cwd=tmp_path, check=False, timeout=60)
    assert proc.returncode == 2 and proc.stderr.count("error:") == 1 and "Traceback" not in proc.stderr
    assert "is not UTF-8 text" in proc.stderr


def test_val_null_beside_a_validation_set_trains_without_validation_and_says_so(opt, tmp_path):
    opt["val"] = None
    opt["train"]["total_iter"] = 2
    opt["logger"]["save_latest_freq"] = 2
    yml = write_yaml(tmp_path / "noval.yml", opt)
    proc = run_script([TRAIN, "-opt", str(yml), "--root", str(tmp_path)], cwd=tmp_path, timeout=120)
    assert "'val' is missing or null: training WITHOUT validation; datasets.val is not used" in proc.stdout
    models = tmp_path / "experiments" / "faults" / "models"
    assert (models / "net_latest.pth").is_file() and not (models / "net_best.pth").exists()


def _limited_run(yml, root, blocks, *extra):
    """train.py in bash under ``ulimit -f`` (files of at most ``blocks`` KiB: a full disk or /dev/shm)."""
    cmd = (f"ulimit -f {blocks} && exec {sys.executable} {TRAIN} -opt {yml} --root {root} " + " ".join(extra))
    env = {"PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    return subprocess.run(["bash", "-c", cmd], cwd=root, env=env, capture_output=True, text=True, timeout=120)


def test_worker_that_cannot_send_a_batch_ends_the_run_naming_the_last_state(opt, tmp_path):
    """Before: the worker printed 'File too large' and the main process waited for the batch for ever."""
    del opt["datasets"]["val"], opt["val"]
    opt["train"]["total_iter"] = 2
    opt["logger"]["save_latest_freq"] = 2
    yml = write_yaml(tmp_path / "w.yml", opt)
    run_script([TRAIN, "-opt", str(yml), "--root", str(tmp_path)], cwd=tmp_path, timeout=120)
    state = tmp_path / "experiments" / "faults" / "training_states" / "2.state"
    assert state.is_file()
    before = state.read_bytes()
    # resumed with one worker: a batch (4 x 3 x 224 x 224 floats, 2.4 MB) no longer fits in 200 KiB
    proc = _limited_run(yml, tmp_path, 200, "--auto_resume", "--force_yml", "train.total_iter=4",
                        "datasets.train.num_worker_per_gpu=1")
    assert proc.returncode == 2, proc.stderr[-3000:]
    error = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "Traceback" not in proc.stderr.split("error:")[-1]
    assert "A DataLoader worker failed at iteration 3 (epoch 0)" in error[0]
    assert "File too large" in error[0] and f"the last complete training state is {state}" in error[0]
    assert state.read_bytes() == before


def test_export_refuses_to_write_over_its_training_state(tmp_path):
    """Before: exit 0, and the training state was replaced by the exported backbone."""
    from train_clip.export import main as export_main
    state = tmp_path / "5.state"
    torch.save({"model": {"w": torch.zeros(2)}, "iter": 5}, state)
    before = state.read_bytes()
    (tmp_path / "link.pt").symlink_to(state)
    for out in (tmp_path / "." / "5.state", tmp_path / "link.pt"):  # another spelling, a link
        with pytest.raises(ConfigError, match="refusing to overwrite it"):
            export_main(["--state", str(state), "--out", str(out)])
    proc = run_script(["-m", "train_clip.export", "--state", str(state), "--out", str(state)], cwd=tmp_path,
                      check=False, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "refusing to overwrite it" in proc.stderr and proc.stderr.count("error:") == 1
    assert state.read_bytes() == before


@pytest.mark.parametrize("filename", ["../x.pt", "training_states/1.state", "/tmp/x.pt", "x.yml", ".pt"])
def test_train_clip_export_filename_stays_in_the_experiment_folder(filename):
    from train_clip.options import validate
    opt = {"name": "c", "model": {"backbone": "random-tiny"}, "data": {"train": [{"type": "json", "path": "a"}]},
           "train": {"batch_size": 2, "total_steps": 1, "lr": 1e-4}, "export": {"filename": filename}}
    with pytest.raises(ConfigError, match=r"'export\.filename' must be a plain file name ending in \.pt"):
        validate(opt)
    opt["export"]["filename"] = "backbone.pt"
    validate(opt)


def test_a_train_crop_other_than_the_sample_size_is_refused_at_start_up():
    """The network trains on sample_size crops: random_crop: 32 used to fail at the first step."""
    from pyiqa.engine.options import validate_options
    from pyiqa.utils.options import load_yaml
    from pyiqa.utils.shipped_configs import resolve_option_file
    opt = load_yaml(resolve_option_file("UniQA/demo", "train"))
    opt["datasets"]["train"]["augment"]["random_crop"] = 32
    with pytest.raises(ConfigError, match=r"augment.random_crop' is 32 but the network trains on 224x224"):
        validate_options(opt, is_train=True)
    opt["network"]["sample_size"] = 32
    validate_options(opt, is_train=True)


def test_network_num_crops_is_bounded_like_the_scoring_command():
    """``network.num_crops: 100000000`` made pyiqa-test draw crops for hours; the bound is create_metric's."""
    from pyiqa.archs.uniqa_arch import UniQA
    with pytest.raises(ConfigError, match=r"'num_crops' must be an integer >= 1 and at most 1,000 .*got 100000000"):
        UniQA(backbone="random-tiny", num_crops=10 ** 8)
