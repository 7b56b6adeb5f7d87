"""The shipped configs are package data: ``-opt`` takes a path or an installed config's name, the
trainers list them, and nothing in the library reads the repository tree.

(Named test_config_names.py: tests/data/prepare/test_shipped_configs.py already owns that basename.)
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from helpers import REPO, run_script
from pyiqa.utils.errors import ConfigError
from pyiqa.utils.shipped_configs import KINDS, configs_root, list_configs, resolve_option_file

pytestmark = pytest.mark.slow  # trains or runs installed commands in subprocesses: pytest -m 'not slow' skips it

TRAIN_DEMO = configs_root() / "train" / "UniQA" / "demo.yml"
SHORT = ["train.total_epoch=1", "train.scheduler.T_max=1", "val.val_freq=11", "logger.save_latest_freq=11"]


# ------------------------------------------------------------------------------------------ resolution
def test_the_clone_folder_is_a_link_to_the_package_data():
    assert (REPO / "options").is_symlink()
    assert (REPO / "options").resolve() == (REPO / "pyiqa" / "configs").resolve()
    assert configs_root().resolve() == (REPO / "pyiqa" / "configs").resolve()  # the editable install


@pytest.mark.parametrize("spelling", ["UniQA/demo", "demo", "UniQA/demo.yml", "demo.yml",
                                      "options/train/UniQA/demo.yml", "options/train/UniQA/demo",
                                      "./options/train/UniQA/demo.yml", "train/UniQA/demo",
                                      "pyiqa/configs/train/UniQA/demo.yml"])
def test_every_spelling_of_a_name_finds_the_installed_config(spelling, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no options/ here: only the package data can answer
    assert resolve_option_file(spelling, "train") == TRAIN_DEMO


def test_each_kind_lists_and_resolves_its_own_configs(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    expected = {"train": "UniQA/koniq", "test": "UniQA/koniq", "train_clip": "uniqa_vitb16",
                "descriptions": "prompts"}
    for kind in KINDS:
        names = list_configs(kind)
        assert expected[kind] in names and names == sorted(names)
        for name in names:
            path = resolve_option_file(name, kind)
            assert path == configs_root() / kind / f"{name}.yml" and path.is_file()
            assert resolve_option_file(f"options/{kind}/{name}.yml", kind) == path
    assert resolve_option_file("koniq", "test") == configs_root() / "test" / "UniQA" / "koniq.yml"
    assert resolve_option_file("demo", "train_clip") == configs_root() / "train_clip" / "demo.yml"


def test_an_existing_file_wins_over_a_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "UniQA").mkdir()
    own = tmp_path / "UniQA" / "demo.yml"
    own.write_text("name: mine\n")
    assert resolve_option_file("UniQA/demo.yml", "train") == Path("UniQA/demo.yml")
    assert resolve_option_file(str(own), "train") == own
    # in a clone the documented path is a real file (through the link), used as is
    monkeypatch.chdir(REPO)
    found = resolve_option_file("options/train/UniQA/demo.yml", "train")
    assert found == Path("options/train/UniQA/demo.yml") and found.samefile(TRAIN_DEMO)


def test_a_folder_named_like_a_config_does_not_hide_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo").mkdir()
    assert resolve_option_file("demo", "train") == TRAIN_DEMO


def test_unknown_name_lists_the_installed_ones_and_the_closest(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError) as info:
        resolve_option_file("konik", "train")
    msg = str(info.value)
    assert "'konik' is neither a file nor an installed training config" in msg
    assert "Did you mean 'koniq'?" in msg
    assert all(name in msg for name in list_configs("train"))
    assert "pyiqa-train --list-configs" in msg
    with pytest.raises(ConfigError, match="Did you mean 'UniQA/livec'.*pyiqa-test --list-configs"):
        resolve_option_file("UniQA/livc", "test")
    with pytest.raises(ConfigError, match="pyiqa-train-clip --list-configs"):
        resolve_option_file("nothing_like_it", "train_clip")


def test_another_kinds_config_is_named_not_swapped_for_this_kinds(tmp_path, monkeypatch):
    """options/test/UniQA/demo.yml given to the trainer must not quietly train UniQA/demo."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigError, match="names an installed test config, which pyiqa-test runs"):
        resolve_option_file("options/test/UniQA/demo.yml", "train")


def test_special_files_and_folders_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fifo = tmp_path / "opts.yml"
    os.mkfifo(fifo)  # reading it would block forever
    with pytest.raises(ConfigError, match="is not a regular file"):
        resolve_option_file(str(fifo), "train")
    with pytest.raises(ConfigError, match="is not a regular file"):
        resolve_option_file(str(tmp_path), "test")


def test_model_cards_name_configs_that_resolve_outside_the_clone(tmp_path, monkeypatch):
    from pyiqa.archs.model_cards import MODEL_CARDS
    monkeypatch.chdir(tmp_path)
    configs = [c.train_config for c in MODEL_CARDS.values() if c.train_config]
    assert configs
    for config in configs:
        assert resolve_option_file(config, "train").is_file(), config


# ------------------------------------------------------------------------------------------ commands
@pytest.mark.parametrize("module,kind", [("pyiqa.train", "train"), ("pyiqa.test", "test"),
                                         ("train_clip.train", "train_clip")])
def test_list_configs_prints_names_and_files_without_opt(module, kind, tmp_path):
    proc = run_script(["-m", module, "--list-configs"], cwd=tmp_path, timeout=120)
    lines = proc.stdout.strip().splitlines()
    assert KINDS[kind][1] in lines[0]
    listed = {}
    for line in lines[1:]:
        name, path = line.split()
        listed[name] = Path(path)
    assert list(listed) == list_configs(kind)
    for name, path in listed.items():
        assert path.is_file() and path.samefile(resolve_option_file(name, kind))


def test_an_unknown_config_ends_the_command_with_the_list_not_a_traceback(tmp_path):
    proc = run_script(["-m", "pyiqa.train", "-opt", "UniQA/konik"], cwd=tmp_path, check=False, timeout=120)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "error: 'UniQA/konik' is neither a file" in proc.stderr and "UniQA/koniq" in proc.stderr
    assert not any(tmp_path.iterdir())  # nothing created


def test_train_and_test_by_name_from_an_empty_folder(tmp_path):
    """What a pip user does: no clone, configs by name; data, experiments/ and results/ land in the
    current folder (or --root), as in the clone."""
    work = tmp_path / "work"
    work.mkdir()
    proc = run_script(["-m", "pyiqa.train", "-opt", "UniQA/demo", "--force_yml", *SHORT], cwd=work)
    assert f"Options: {TRAIN_DEMO}" in proc.stdout
    assert "11 iterations" in proc.stdout
    assert (work / "datasets" / "demo" / "meta_info_demo.csv").is_file()
    exp = work / "experiments" / "UniQA_demo"
    assert (exp / "models" / "net_best.pth").is_file()
    assert (exp / "UniQA_demo_options.yml").is_file()  # the resolved options, saved beside the run
    proc = run_script(["-m", "pyiqa.test", "-opt", "options/test/UniQA/demo.yml", "--root", "out"], cwd=work)
    assert "Options: " + str(configs_root() / "test" / "UniQA" / "demo.yml") in proc.stdout
    assert (work / "out" / "results" / "UniQA_demo_test" / "predictions_demo.csv").is_file()
    assert not (work / "results").exists()
    assert sorted(p.name for p in work.iterdir()) == ["datasets", "experiments", "out"]


def test_clip_pretraining_by_name_from_an_empty_folder(tmp_path):
    """``-opt demo`` means the train_clip demo here (the adapter trainer would read UniQA/demo)."""
    proc = run_script(["-m", "train_clip.train", "-opt", "demo", "--force_yml", "train.epochs=1",
                       "eval.eval_at_start=false"], cwd=tmp_path)
    assert f"Options: {configs_root() / 'train_clip' / 'demo.yml'}" in proc.stdout
    assert (tmp_path / "experiments" / "UniQA_clip_demo" / "uniqa_backbone.pt").is_file()
    # one epoch is shorter than the demo's warm-up: a smoke run may do that, and is told
    assert "'train.warmup_steps' is 30, longer than the run (2 steps)" in proc.stdout


# ------------------------------------------------------------------------------------------ no repository
PROBE = textwrap.dedent("""
    import dataclasses, importlib, json, pkgutil, sys
    from pathlib import Path
    site = Path(sys.argv[1]).resolve()
    import pyiqa, train_clip
    homes = [site / "pyiqa", site / "train_clip"]
    report = {"pyiqa": pyiqa.__file__, "outside": [], "missing": []}

    def check(where, value):
        if isinstance(value, Path) and value.is_absolute():
            path = value.resolve()
            if not any(path == h or h in path.parents for h in homes):
                report["outside"].append(f"{where} = {value}")
            elif not path.exists():
                report["missing"].append(f"{where} = {value}")

    for pkg in (pyiqa, train_clip):
        for info in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
            module = importlib.import_module(info.name)
            for key, value in vars(module).items():
                check(f"{info.name}.{key}", value)
                if dataclasses.is_dataclass(value) and isinstance(value, type):
                    for f in dataclasses.fields(value):
                        check(f"{info.name}.{key}.{f.name}", f.default)
    from pyiqa.utils.shipped_configs import list_configs, resolve_option_file
    from pyiqa.protocols.zero_shot import config_path
    from train_clip.corpus.prompts import load_prompts
    report["resolved"] = [str(resolve_option_file(n, k)) for k in ("train", "test", "train_clip", "descriptions")
                          for n in list_configs(k)]
    report["zero_shot"] = str(config_path("koniq10k"))
    report["prompts"] = str(load_prompts().path)
    print(json.dumps(report))
""")


def test_the_library_reads_nothing_outside_the_package(tmp_path):
    """The installed layout without a clone around it: every module imported from a copy of the two
    packages must find what it needs inside them (a path built from the repository root, such as
    ``Path(__file__).parents[2] / 'options'``, points outside the copy and fails here)."""
    site = tmp_path / "site"
    ignore = shutil.ignore_patterns("__pycache__")
    for package in ("pyiqa", "train_clip"):
        shutil.copytree(REPO / package, site / package, ignore=ignore)
    empty = tmp_path / "cwd"
    empty.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", PROBE, str(site)], cwd=empty, env=env, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert Path(report["pyiqa"]).resolve().parent == (site / "pyiqa").resolve()  # the copy, not the clone
    assert report["outside"] == [] and report["missing"] == []
    inside = (site / "pyiqa" / "configs").resolve()
    for path in report["resolved"] + [report["zero_shot"], report["prompts"]]:
        assert inside in Path(path).resolve().parents, path
    assert len(report["resolved"]) == sum(len(list_configs(k)) for k in KINDS)
