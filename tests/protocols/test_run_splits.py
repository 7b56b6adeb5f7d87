"""pyiqa-run-splits: per-split configs, real trainer subprocesses on the demo data, skip, resume,
few-label repeats, cross-dataset tests, and the median/mean/std of each protocol."""
from __future__ import annotations

import csv
import json
import pickle
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from helpers import REPO, train_options, write_yaml
from pyiqa.data.prepare.split_maker import few_label_splits
from pyiqa.engine.options import parse_experiment
from pyiqa.protocols import aggregate
from pyiqa.protocols.commands.run_splits import main
from pyiqa.protocols.split_configs import validation_part
from pyiqa.protocols.splits_runner import SplitRunArgs, make_plan
from pyiqa.utils.entry import run_cli
from pyiqa.utils.errors import ConfigError
from pyiqa.utils.run_results import RunResults

pytestmark = pytest.mark.slow  # trains or runs installed commands in subprocesses: pytest -m 'not slow' skips it

DEMO_YML = str(REPO / "options/train/UniQA/demo.yml")
SECTIONS = ("train", "val", "test")
# two iterations, validation at the end, one centre crop: each train.py run takes ~10 s on 2 cores
FAST = ["num_gpu=0", "precision=fp32", "train.total_epoch=~", "train.total_iter=2", "val.val_freq=2",
        "network.test_crop=center", "logger.print_freq=1", "logger.save_latest_freq=2",
        "logger.use_tb_logger=false"]
# one process per "GPU" (without CUDA they share the CPU); a single-GPU machine runs them in turn
GPUS = "0" if torch.cuda.device_count() == 1 else "0,1"


def demo_overrides(demo, **extra):
    out = [f"datasets.{s}.{k}={v}" for s in SECTIONS for k, v in
           (("dataroot_target", demo["root"]), ("num_worker_per_gpu", 0), *extra.items())]
    return out + FAST


def cli_error(argv, capsys):
    """Run the command as its console entry point does; the one-line message of the user error."""
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        run_cli(lambda: main(argv))
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
    return err


def read_json(path):
    return json.loads(path.read_text())


# ------------------------------------------------------------------------------ aggregation (no training)
def _results(name, release, honest, cross=None):
    metrics = lambda v: {"srcc": v, "plcc": v + 0.01, "krcc": v - 0.1, "rmse": 0.2}  # noqa: E731
    return {"name": name, "iterations": 10, "seconds": 1.5, "feature_cache": False,
            "best": {"val": {"metric": "srcc", "value": release, "iter": 5, "metrics": metrics(release)}},
            "test": {"test": metrics(0.0)},
            "test_best_network": {"test": metrics(honest), **({"test_livec": metrics(cross)} if cross else {})}}


def test_aggregation_of_synthetic_results(tmp_path):
    release, honest, cross = [0.9, 0.8, 0.5, float("nan")], [0.7, 0.6, 0.2, 0.4], [0.3, 0.1, 0.2, 0.6]
    records = []
    for k, (r, h, c) in enumerate(zip(release, honest, cross), start=1):
        path = tmp_path / f"run{k}" / "results.json"
        path.parent.mkdir()
        path.write_text(json.dumps(_results(f"run{k}", r, h, c)))
        records.append(aggregate.split_record(k, None, aggregate.read_results(path), cross=["livec"]))
    summary = aggregate.summarize(records, name="x", dataset="koniq", config="c.yml", labels=None,
                                  prompts=["quality"], cross=["livec"])
    rel = summary["protocols"]["release"]["srcc"]
    finite = [0.9, 0.8, 0.5]  # a NaN score (e.g. constant predictions) is left out, and n says so
    assert rel == pytest.approx({"median": 0.8, "mean": np.mean(finite), "std": np.std(finite, ddof=1), "n": 3})
    krcc = summary["protocols"]["honest"]["krcc"]
    assert krcc == pytest.approx({"median": 0.4, "mean": 0.375, "std": np.std([0.6, 0.5, 0.1, 0.3], ddof=1),
                                  "n": 4})
    assert summary["cross"]["livec"]["srcc"]["median"] == pytest.approx(0.25)
    assert summary["splits"] == [1, 2, 3, 4] and "honest_unavailable" not in summary

    files = aggregate.write_outputs(tmp_path / "out", records, summary, ["livec"])
    assert read_json(files[1]) == summary  # strict JSON: no NaN
    rows = list(csv.DictReader(files[0].open()))
    assert [r["run"] for r in rows] == ["run1", "run2", "run3", "run4"]
    assert float(rows[1]["honest_plcc"]) == 0.61 and rows[3]["release_srcc"] == "nan"
    assert float(rows[2]["cross_livec_krcc"]) == pytest.approx(0.1)
    assert "| honest | 0.5000 (0.4750 ± " in files[2].read_text()

    # a split whose val part is the test part has no honest score; with none at all, the reason is given
    single = [aggregate.split_record(1, 50, RunResults.from_dict(_results("r", 0.5, 0.4), "r.json"),
                                     val_part="test", honest_note="val is test")]
    summary = aggregate.summarize(single, name="y", dataset="d", config="c", labels=50, prompts=None)
    assert "honest" not in summary["protocols"] and summary["honest_unavailable"] == "val is test"
    assert summary["protocols"]["release"]["srcc"] == {"median": 0.5, "mean": 0.5, "std": None, "n": 1}


# ------------------------------------------------------------------------------ bad input (in-process)
def test_bad_input_is_one_line_naming_the_value_and_creates_nothing(tmp_path, capsys, demo_data):
    base = ["--root", str(tmp_path), "--results", str(tmp_path / "results")]
    assert "nope.yml" in cli_error(["-opt", str(tmp_path / "nope.yml"), *base], capsys)
    assert "--splits '1-0'" in cli_error(["-opt", DEMO_YML, "--splits", "1-0", *base], capsys)
    assert "'a' is not a split number" in cli_error(["-opt", DEMO_YML, "--splits", "a", *base], capsys)
    assert "'x' is not a GPU number" in cli_error(["-opt", DEMO_YML, "--gpus", "0,x", *base], capsys)
    assert "'0' is given twice" in cli_error(["-opt", DEMO_YML, "--gpus", "0,0", *base], capsys)
    assert "Did you mean 'livec'" in cli_error(["-opt", DEMO_YML, "--test-on", "livecc", *base], capsys)
    meta = tmp_path / "meta_info_demo.csv"
    shutil.copy(demo_data["meta_info_file"], meta)
    err = cli_error(["-opt", DEMO_YML, "--labels", "50", *base, "--force_yml",
                     *demo_overrides(demo_data, meta_info_file=meta)], capsys)
    assert f"few-label file '{tmp_path / 'demo_fewlabel50_seed123.pkl'}' does not exist" in err
    assert "pyiqa-prepare-dataset NAME --root" in err and "--few-label 50" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["meta_info_demo.csv"]  # no results/, no experiments/


# ------------------------------------------------------------------------------ derived configs (dry runs)
def test_release_config_has_no_honest_protocol_and_prompt_variants_get_their_own_name(tmp_path, demo_data):
    # the release's layout: an 80/20 split file whose val part is empty (validation falls back to test)
    opt = train_options("UniQA_Demo_split1", demo_data, "random-tiny", network__backbone="random-tiny")
    yml = write_yaml(tmp_path / "release.yml", opt)
    args = SplitRunArgs(opt=str(yml), splits=[2, 3], train_command=["train.py"], root=str(tmp_path),
                        results=str(tmp_path / "results"), test_options_dir=REPO / "options/test/UniQA",
                        force_yml=["network.prompts=[quality,blur,noise,lowhigh]"])
    plan = make_plan(args)
    assert plan.name == "UniQA_Demo_quality-blur-noise-lowhigh"  # the release type's preset was [quality]
    assert plan.prompts == ["quality", "blur", "noise", "lowhigh"]
    job = plan.jobs[1]
    assert job.name == "UniQA_Demo_quality-blur-noise-lowhigh_split3" and job.val_part == "test"
    assert "has no 'val' rows" in job.honest_note and "ratio712" in job.honest_note
    assert "test" not in job.options["datasets"]  # no honest protocol: no test section is added
    assert {s["split_index"] for s in job.options["datasets"].values()} == {3}
    assert make_plan(SplitRunArgs(**{**vars(args), "tag": "multicue"})).jobs[0].name == "UniQA_Demo_multicue_split2"

    # a 70/10/20 split file (the release layout has no test section): honest, with a test section added
    table = pd.read_csv(demo_data["meta_info_file"])
    splits = {k: {p: table.index[table[f"ratio712_seed123_split_{k:02d}"] == p].tolist() for p in SECTIONS}
              for k in (1, 2, 3)}
    (tmp_path / "demo_ratio712_seed123.pkl").write_bytes(pickle.dumps(splits))
    for section in ("train", "val"):
        opt["datasets"][section]["split_file"] = str(tmp_path / "demo_ratio712_seed123.pkl")
    job = make_plan(SplitRunArgs(**{**vars(args), "opt": str(write_yaml(yml, opt)), "force_yml": []})).jobs[1]
    assert (job.name, job.val_part, job.honest_note) == ("UniQA_Demo_split3", "val", "")
    assert job.options["datasets"]["test"] == job.options["datasets"]["val"]  # phase 'test': split 3's test part
    # a train/val-only split file: honest validation, but no test rows, so no test section that reads none
    (tmp_path / "demo_trainval.pkl").write_bytes(pickle.dumps({k: {p: v[p] for p in ("train", "val")}
                                                               for k, v in splits.items()}))
    for section in ("train", "val"):
        opt["datasets"][section]["split_file"] = str(tmp_path / "demo_trainval.pkl")
    job = make_plan(SplitRunArgs(**{**vars(args), "opt": str(write_yaml(yml, opt)), "force_yml": []})).jobs[1]
    assert job.val_part == "val" and "test" not in job.options["datasets"]

    # a 70/10/20 val section, but a test section over every row: they overlap, so no honest protocol
    datasets = {"val": {"type": "DemoIQADataset", "dataroot_target": str(demo_data["root"]), "split_index": 1,
                        "split_ratio": 712},
                "test": {"type": "DemoIQADataset", "dataroot_target": str(demo_data["root"]),
                         "split_column": "ratio802_seed123_split_01", "override_phase": "train"}}
    part, note = validation_part(datasets, 1)
    assert part == "val+test" and "share 13 rows" in note
    del datasets["test"]["override_phase"]
    assert validation_part(datasets, 1) == ("val", "")


# ------------------------------------------------------------------------------ end to end
@pytest.fixture(scope="module")
def split_run(tmp_path_factory, demo_data):
    """Two splits of demo.yml, one process per 'GPU', also tested on the demo set as a cross dataset."""
    work = tmp_path_factory.mktemp("splits")
    argv = ["-opt", DEMO_YML, "--splits", "1-2", "--gpus", GPUS, "--root", str(work), "--results",
            str(work / "results"), "--test-on", "demo", "--dataroot", f"demo={demo_data['root']}",
            "--force_yml", *demo_overrides(demo_data), "datasets.test_demo.num_worker_per_gpu=0"]
    summary = main(argv)
    return work, argv, summary


def test_splits_train_and_summary_holds_each_protocols_statistics(split_run):
    work, _, summary = split_run
    out = work / "results" / "UniQA_demo"
    for k in (1, 2):
        cfg = yaml.safe_load((out / "configs" / f"UniQA_demo_split{k}.yml").read_text())
        assert cfg["name"] == f"UniQA_demo_split{k}"
        assert {s: cfg["datasets"][s]["split_index"] for s in SECTIONS} == {s: k for s in SECTIONS}
        assert not {"split_index", "split_ratio"} & set(cfg["datasets"]["test_demo"])
        saved = work / "experiments" / f"UniQA_demo_split{k}" / f"UniQA_demo_split{k}_options.yml"
        # train.py ran exactly the derived YAML (it saves the resolved config: defaults written out)
        assert yaml.safe_load(saved.read_text()) == parse_experiment(cfg, is_train=True)[0].to_dict()
    results = [read_json(work / "experiments" / f"UniQA_demo_split{k}" / "results.json") for k in (1, 2)]
    assert [r["iterations"] for r in results] == [2, 2]
    assert read_json(out / "summary.json") == summary
    assert set(summary) == {"name", "dataset", "config", "labels", "prompts", "splits", "protocols", "cross"}
    assert (summary["name"], summary["dataset"], summary["labels"], summary["prompts"], summary["splits"]) == \
        ("UniQA_demo", "demo", None, ["quality"], [1, 2])
    sources = {"release": lambda r: r["best"]["val"]["metrics"],   # the 70/10/20 demo: a real val part
               "honest": lambda r: r["test_best_network"]["test"]}
    for protocol, get in sources.items():
        for metric in ("srcc", "plcc", "krcc"):
            values = [get(r)[metric] for r in results]
            assert summary["protocols"][protocol][metric] == pytest.approx(
                {"median": np.median(values), "mean": np.mean(values), "std": np.std(values, ddof=1), "n": 2})
    cross = [r["test_best_network"]["test_demo"]["plcc"] for r in results]
    assert summary["cross"]["demo"]["plcc"]["mean"] == pytest.approx(np.mean(cross))
    rows = list(csv.DictReader((out / "splits.csv").open()))
    assert [(r["split"], r["run"], r["val_part"]) for r in rows] == [("1", "UniQA_demo_split1", "val"),
                                                                     ("2", "UniQA_demo_split2", "val")]
    assert [float(r["honest_krcc"]) for r in rows] == [r["test_best_network"]["test"]["krcc"] for r in results]
    assert "| honest |" in (out / "summary.md").read_text()


def test_rerun_skips_finished_splits(split_run, capsys):
    work, argv, summary = split_run
    watched = list((work / "results" / "UniQA_demo" / "logs").glob("*.log"))
    watched += list((work / "experiments").glob("UniQA_demo_split*/results.json"))
    before = {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in watched}
    capsys.readouterr()
    assert main(argv) == summary
    out = capsys.readouterr().out
    assert "split 1: finished" in out and "split 2: finished" in out and ": training" not in out
    assert {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in watched} == before
    # other options under the same name are refused, naming the difference, before anything runs
    with pytest.raises(ConfigError, match=r"other options \(train.optim.lr: 0.001 there, 0.01 now\)"):
        main([*argv, "train.optim.lr=0.01"])


def test_interrupted_split_resumes_with_auto_resume(split_run, capsys):
    work, argv, _ = split_run
    exp = work / "experiments" / "UniQA_demo_split2"
    (exp / "results.json").unlink()  # as if killed after its last training state, before the end
    assert (exp / "training_states" / "2.state").is_file()
    with pytest.raises(ConfigError, match="stopped at iteration 2 without results.json; pass --auto_resume"):
        main(argv)
    capsys.readouterr()
    summary = main([*argv, "--auto_resume"])
    assert "split 2: resuming UniQA_demo_split2" in capsys.readouterr().out
    log = (work / "results" / "UniQA_demo" / "logs" / "UniQA_demo_split2.log").read_text()
    assert "--auto_resume" in log and f"Resumed from {exp / 'training_states' / '2.state'}" in log
    assert (exp / "results.json").is_file() and summary["splits"] == [1, 2]
    assert not list((work / "experiments").glob("*_archived_*"))


def test_few_label_repeats_report_the_release_protocol_only(tmp_path, demo_data):
    meta = tmp_path / "meta_info_demo.csv"
    shutil.copy(demo_data["meta_info_file"], meta)
    with open(demo_data["split_file"], "rb") as f:  # the demo's 80/20 splits, as prepare_dataset draws them
        subsets = few_label_splits(pickle.load(f), 50)
    (tmp_path / "demo_fewlabel50_seed123.pkl").write_bytes(pickle.dumps(subsets))
    summary = main(["-opt", DEMO_YML, "--labels", "50", "--splits", "2", "--root", str(tmp_path), "--results",
                    str(tmp_path / "results"), "--force_yml", *demo_overrides(demo_data, meta_info_file=meta)])
    out = tmp_path / "results" / "UniQA_demo_labels50"
    cfg = yaml.safe_load((out / "configs" / "UniQA_demo_labels50_rep2.yml").read_text())
    assert {(cfg["datasets"][s]["split_file"], cfg["datasets"][s]["split_index"]) for s in SECTIONS} == \
        {(str(tmp_path / "demo_fewlabel50_seed123.pkl"), 2)}
    assert "split_ratio" not in cfg["datasets"]["train"]
    log = (out / "logs" / "UniQA_demo_labels50_rep2.log").read_text()
    assert "phase=train): 50 images from split file" in log
    result = read_json(tmp_path / "experiments" / "UniQA_demo_labels50_rep2" / "results.json")
    assert summary["labels"] == 50 and summary["splits"] == [2]
    assert summary["protocols"]["release"]["srcc"]["median"] == result["best"]["val"]["metrics"]["srcc"]
    assert "honest" not in summary["protocols"] and "has no 'val' rows" in summary["honest_unavailable"]


def test_a_config_without_splits_runs_once_on_its_own_split(tmp_path, demo_data):
    """AVA's and AADB's configs train on the dataset's official split: --splits 1 runs it once; a range
    would repeat the same rows and is refused."""
    opt = train_options("UniQA_Official", demo_data, "random-tiny", network__backbone="random-tiny")
    for section in opt["datasets"].values():
        del section["split_file"], section["split_index"]
    args = SplitRunArgs(opt=str(write_yaml(tmp_path / "official.yml", opt)), splits=[1], train_command=["train.py"],
                        root=str(tmp_path), results=str(tmp_path / "results"),
                        test_options_dir=REPO / "options/test/UniQA")
    job, = make_plan(args).jobs
    assert job.name == "UniQA_Official_split1" and "split_index" not in job.options["datasets"]["train"]
    with pytest.raises(ConfigError, match=r"--splits 1 for one run on the dataset's own \(official\) split"):
        make_plan(SplitRunArgs(**{**vars(args), "splits": [1, 2]}))
