"""pyiqa-eval-zero-shot end to end on the demo images with the random tiny backbone: the shipped
KonIQ test config read through --dataroot/--meta-dir, the 'demo' name, the JSON and CSV written, the
correlations recomputed from the CSV, the RANDOM-weights label, resuming, and the bad-input messages."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Dict, List

import pytest
from scipy import stats

from pyiqa.protocols.commands import eval_zero_shot
from pyiqa.protocols.result_files import read_zero_shot
from pyiqa.utils.entry import run_cli
from pyiqa.utils.errors import CheckpointError, ConfigError, DataError

MODELS = ("uniqa", "uniqa-single")


@pytest.fixture(scope="module")
def script():
    return eval_zero_shot  # the command's module: main(argv) raises the typed errors


@pytest.fixture(scope="module")
def meta_dir(demo_data, tmp_path_factory) -> Path:
    """The demo's meta CSV under the name koniq.yml reads (same layout: image name, MOS, ...)."""
    folder = tmp_path_factory.mktemp("meta")
    shutil.copy(demo_data["meta_info_file"], folder / "meta_info_KonIQ10kDataset.csv")
    return folder


def argv(demo_data, meta_dir: Path, out: Path, *extra: str) -> List[str]:
    root = str(demo_data["root"])
    return ["--datasets", "koniq10k", "demo", "--dataroot", f"koniq10k={root}", "--dataroot", f"demo={root}",
            "--meta-dir", str(meta_dir), "--backbone", "random-tiny", "--limit", "6", "--batch-size", "4",
            "--workers", "0", "--device", "cpu", "--out", str(out), *extra]


def read_csv(path: Path) -> List[Dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def test_scores_resume_and_random_label(script, demo_data, meta_dir, tmp_path, capsys):
    out = tmp_path / "zero_shot"
    script.main(argv(demo_data, meta_dir, out))
    printed = capsys.readouterr().out
    assert "RANDOM weights" in printed and "NOT image quality" in printed
    first = {}
    for name in ("koniq10k", "demo"):
        data = json.loads((out / f"{name}.json").read_text())
        first[name] = data
        assert {"dataset", "images", "backbone", "random_weights", "models"} <= set(data)
        assert data["dataset"] == name and data["images"] == 6 and data["rows"] == "all rows"
        assert data["backbone"] == "random-tiny" and data["random_weights"] is True
        assert "RANDOM" in data["note"]
        assert set(data["models"]) == set(MODELS)
        rows = read_csv(out / f"{name}_predictions.csv")
        assert list(rows[0]) == ["image", "mos", "mos_normalized", *MODELS, "note"]
        assert len(rows) == 6 and all("RANDOM" in r["note"] for r in rows)
        assert rows[0]["image"] == "images/astronaut_pristine.png"  # the meta CSV's first row and name
        assert float(rows[0]["mos_normalized"]) == pytest.approx(float(rows[0]["mos"]) / 100)
        label = [float(r["mos_normalized"]) for r in rows]
        for model in MODELS:
            pred = [float(r[model]) for r in rows]
            metrics = data["models"][model]
            assert set(metrics) == {"srcc", "plcc", "krcc"}
            assert metrics["srcc"] == pytest.approx(stats.spearmanr(pred, label)[0], abs=1e-12)
            assert metrics["plcc"] == pytest.approx(stats.pearsonr(pred, label)[0], abs=1e-9)
            assert metrics["krcc"] == pytest.approx(stats.kendalltau(pred, label)[0], abs=1e-12)
        assert [r["uniqa"] for r in rows] != [r["uniqa-single"] for r in rows]  # two models, not one
        table_row = read_zero_shot(out / f"{name}.json")  # what pyiqa-results-table reads
        assert table_row.random_weights and table_row.models["ensemble"] == data["models"]["uniqa"]
    # a second run skips both, writing nothing
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    results = script.main(argv(demo_data, meta_dir, out))
    assert [r.skipped for r in results] == [True, True]
    assert "done earlier: skipped" in capsys.readouterr().out
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps
    # a deleted JSON is scored again from the start, to the same numbers; the other stays skipped
    (out / "koniq10k.json").unlink()
    results = script.main(argv(demo_data, meta_dir, out))
    assert [r.skipped for r in results] == [False, True]
    assert json.loads((out / "koniq10k.json").read_text()) == first["koniq10k"]


def test_bad_inputs_are_one_clear_error(script, demo_data, meta_dir, tmp_path, monkeypatch):
    root = str(demo_data["root"])
    with pytest.raises(ConfigError, match=r"Unknown dataset 'livc'\. Did you mean 'livec'\?"):
        script.main(["--datasets", "livc"])
    with pytest.raises(ConfigError, match=r"Unknown model 'uniqa-singel'\. Did you mean 'uniqa-single'\?"):
        script.main(["--datasets", "livec", "--models", "uniqa-singel"])
    with pytest.raises(ConfigError, match=r"--dataroot names 'konq'.*Did you mean 'koniq10k'\?"):
        script.main(["--datasets", "koniq10k", "--dataroot", "konq=/x"])
    # every dataset is checked before any is scored: koniq10k is fine, livec's folder is missing
    missing = tmp_path / "no_such_folder"
    out = tmp_path / "out"
    with pytest.raises(DataError) as err:
        script.main(["--datasets", "koniq10k", "livec", "--dataroot", f"koniq10k={root}", "--dataroot",
                     f"livec={missing}", "--meta-dir", str(meta_dir), "--backbone", "random-tiny",
                     "--out", str(out)])
    msg = str(err.value)
    assert f"livec: image folder '{missing}' does not exist" in msg
    assert "pyiqa-prepare-dataset livec --root" in msg and "\n" not in msg
    assert not out.exists()
    empty = tmp_path / "empty_meta"
    empty.mkdir()
    with pytest.raises(DataError, match=r"meta CSV '.*meta_info_KonIQ10kDataset\.csv' does not exist.*"
                                        r"pyiqa-prepare-dataset koniq10k"):
        script.main(["--datasets", "koniq10k", "--dataroot", f"koniq10k={root}", "--meta-dir", str(empty),
                     "--backbone", "random-tiny", "--out", str(out)])
    # no weights anywhere: the weight lookup's own message (where it looked, where to download)
    monkeypatch.setenv("PYIQA_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    with pytest.raises(CheckpointError, match=r"needs the UniQA backbone weights 'UniQA_weight\.pt'.*Looked in"):
        script.main(["--datasets", "koniq10k", "--dataroot", f"koniq10k={root}", "--meta-dir", str(meta_dir),
                     "--out", str(out)])
    assert not out.exists()


def test_command_line_error_has_no_traceback(script, capsys):
    """What ``pyiqa-eval-zero-shot`` does with the error (run_cli), in-process: a
    subprocess would spend seconds importing torch to show the same."""
    with pytest.raises(SystemExit) as exit_info:
        run_cli(lambda: script.main(["--datasets", "livc"]))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Unknown dataset 'livc'. Did you mean 'livec'?")
    assert "Traceback" not in err and err.count("\n") == 1
