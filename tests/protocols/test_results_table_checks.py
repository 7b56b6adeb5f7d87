"""The results table refuses numbers no correlation can be, shows a NaN zero-shot correlation as
'undefined', draws every result it has (the demo's, flagged RANDOM WEIGHTS on the figure itself) and
names only files that exist: in the results folder or in the package."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Optional

import pytest
import yaml
from PIL import Image

from pyiqa.protocols.aggregate import split_record
from pyiqa.utils.run_results import RunResults
from pyiqa.protocols.paper_results import PAPER_YAML, load_paper_results
from pyiqa.protocols.result_files import collect_results
from pyiqa.protocols.results_chart import RANDOM_LABEL, RANDOM_TITLE, build_figure
from pyiqa.protocols.results_table import build_results_table, chart_points, select
from pyiqa.utils.errors import DataError

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "results_table.py"
PACKAGE_ROOT = PAPER_YAML.parents[2]   # the folder holding pyiqa/: the clone, or site-packages


def stat(median: Any, n: Any = 3, mean: Any = None, std: Any = 0.01) -> Dict[str, Any]:
    return {"median": median, "mean": median if mean is None else mean, "std": std, "n": n}


def demo_run(root: Path, name: str = "UniQA_demo", backbone: str = "random-tiny",
             release: Optional[Dict[str, Any]] = None) -> Path:
    """A run as pyiqa-run-splits writes it for the demo: summary.json and the per-split YAMLs."""
    summary = {"name": name, "dataset": "demo", "config": "/nowhere/demo.yml", "labels": None,
               "prompts": ["quality"], "splits": [1, 2, 3],
               "protocols": {"release": release or {"srcc": stat(0.901), "plcc": stat(0.780)},
                             "honest": {"srcc": stat(0.639), "plcc": stat(0.605)}}}
    (root / name / "configs").mkdir(parents=True)
    for split in (1, 2, 3):
        (root / name / "configs" / f"{name}_split{split}.yml").write_text(
            yaml.safe_dump({"name": f"{name}_split{split}", "network": {"type": "UniQA", "backbone": backbone}}))
    path = root / name / "summary.json"
    path.write_text(json.dumps(summary, indent=2))
    return path


def zero_shot(root: Path, dataset: str = "demo", text: Optional[str] = None, **fields: Any) -> Path:
    """A zero-shot file as pyiqa-eval-zero-shot writes it (json.dumps: NaN for an undefined correlation)."""
    data = {"dataset": dataset, "images": 130, "backbone": "random-tiny", "random_weights": True,
            "models": {"uniqa": {"srcc": -0.090, "plcc": -0.241, "krcc": -0.064},
                       "uniqa-single": {"srcc": 0.035, "plcc": 0.141, "krcc": 0.027}},
            "limit": None, **fields}
    path = root / "zero_shot" / f"{dataset}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text if text is not None else json.dumps(data, indent=2))
    return path


# ------------------------------------------------------------------------------------ impossible numbers
@pytest.mark.parametrize("release, key, shown", [
    ({"srcc": stat(float("nan"))}, "protocols.release.srcc.median", "is NaN"),
    ({"srcc": stat(0.5, mean=float("nan"))}, "protocols.release.srcc.mean", "is NaN"),
    ({"srcc": stat(1.5)}, "protocols.release.srcc.median", "is 1.5, which no correlation can be"),
    ({"plcc": stat(0.5, mean=-1.2)}, "protocols.release.plcc.mean", "is -1.2, which no correlation can be"),
    ({"krcc": stat(float("inf"))}, "protocols.release.krcc.median", "is inf, which no correlation can be"),
    ({"srcc": stat(0.5, std=-0.1)}, "protocols.release.srcc.std", "must be a standard deviation"),
    ({"srcc": stat(0.5, n=2.5)}, "protocols.release.srcc.n", "must be the number of splits"),
    ({"srcc": stat(0.5, n=-1)}, "protocols.release.srcc.n", "must be the number of splits"),
], ids=["median-nan", "mean-nan", "median-1.5", "mean--1.2", "median-inf", "std-negative", "n-fraction",
        "n-negative"])
def test_impossible_summary_numbers_are_refused(tmp_path, release, key, shown):
    path = demo_run(tmp_path, release=release)
    zero_shot(tmp_path)
    with pytest.raises(DataError, match=re.escape(f"{path}: '{key}' ") + ".*" + re.escape(shown)):
        collect_results(tmp_path, strict=True)
    report = build_results_table(tmp_path)  # lenient: skipped, listed, the rest still shown
    assert [r.name for r in report.results.runs] == []
    assert f"- `UniQA_demo/summary.json`: '{key}' " in report.markdown
    assert "zero_shot/demo.json" in report.markdown


@pytest.mark.parametrize("models, key, shown", [
    ({"uniqa": {"srcc": 2.0}}, "models.uniqa.srcc", "is 2.0, which no correlation can be"),
    ({"uniqa-single": {"plcc": -1.0000001}}, "models.uniqa-single.plcc", "is -1.0000001"),
    ({"uniqa": {"krcc": float("-inf")}}, "models.uniqa.krcc", "is -inf"),
], ids=["srcc-2", "plcc-below-minus-1", "krcc-minus-inf"])
def test_impossible_zero_shot_numbers_are_refused(tmp_path, models, key, shown):
    path = zero_shot(tmp_path, models=models)
    with pytest.raises(DataError, match=re.escape(f"{path}: '{key}' {shown}")):
        collect_results(tmp_path, strict=True)


def test_the_ends_of_the_range_and_a_zero_image_file(tmp_path):
    zero_shot(tmp_path, models={"uniqa": {"srcc": 1.0, "plcc": -1.0, "krcc": None}})
    assert collect_results(tmp_path).zero_shot[0].models["ensemble"] == {"srcc": 1.0, "plcc": -1.0, "krcc": None}
    path = zero_shot(tmp_path, images=0)
    with pytest.raises(DataError, match=re.escape(f"{path}: 'images' must be the number of images scored")):
        collect_results(tmp_path, strict=True)


def test_cli_refuses_a_nan_summary_in_one_line(tmp_path):
    """The sweep's case: a summary with NaN for SRCC, --strict: exit 2, the file, key and value, no traceback."""
    results = tmp_path / "results"
    (results / "koniq_10").mkdir(parents=True)
    (results / "koniq_10" / "summary.json").write_text(
        '{"name": "koniq_10", "dataset": "koniq10k", "prompts": ["quality"], "splits": [1], "protocols": '
        '{"release": {"srcc": {"median": NaN, "mean": NaN, "std": null, "n": 1}}}}')
    proc = subprocess.run([sys.executable, str(SCRIPT), str(results), "--strict"], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1
    assert "koniq_10/summary.json: 'protocols.release.srcc.median' is NaN" in errors[0]
    assert not (results / "TABLE.md").exists()


def test_nan_zero_shot_correlation_is_undefined_not_a_number(tmp_path):
    """The evaluator writes NaN when the predictions are constant; the table says 'undefined' and why."""
    zero_shot(tmp_path, "koniq10k", text='{"dataset": "koniq10k", "images": 2, "backbone": "random-tiny", '
              '"random_weights": true, "limit": 2, "models": {"uniqa": {"srcc": NaN, "plcc": NaN, "krcc": NaN}, '
              '"uniqa-single": {"srcc": 0.5, "plcc": NaN, "krcc": 0.5}}}')
    zero_shot(tmp_path, "demo", text='{"dataset": "demo", "images": 4, "backbone": "random-tiny", '
              '"random_weights": true, "limit": 4, "models": {"uniqa": {"srcc": NaN, "plcc": 0.1, "krcc": NaN}}}')
    md = build_results_table(tmp_path).markdown
    rows = {line.split("|")[1].strip(): [c.strip() for c in line.split("|")[2:-1]]
            for line in md.splitlines() if line.startswith("| ")}
    assert rows["ours ensemble (uniqa)"] == ["n/a", "undefined", "n/a"]
    assert rows["difference, ensemble"] == ["n/a", "undefined", "n/a"]
    assert rows["ours single cue (uniqa-single)"][1] == "0.500"
    assert "| zero_shot/demo.json | demo | zero-shot ensemble; no paper number | undefined | 0.100 | 4 images |" in md
    assert "> **undefined**: a correlation with no value (the file holds NaN)" in md
    assert "`zero_shot/koniq10k.json` ensemble: srcc, plcc, krcc" in md
    assert "`zero_shot/koniq10k.json` single: plcc" in md
    assert not re.search(r"[|/]\s*nan\s*[|/]", md, re.IGNORECASE)  # no cell prints 'nan'



def test_results_json_with_test_untrained_is_read(tmp_path):
    """The adapter trainer's results.json gained 'test_untrained'; the split summary ignores it."""
    results = {"name": "d_split1", "iterations": 330, "seconds": 1.3,
               "best": {"val": {"metric": "srcc", "value": 0.81, "iter": 55,
                                "metrics": {"srcc": 0.81, "plcc": 0.81, "krcc": 0.64, "rmse": 0.21}}},
               "test_best_network": {"test": {"srcc": 0.67, "plcc": 0.71, "krcc": 0.53}},
               "test_untrained": {"test": {"srcc": 0.38, "plcc": 0.43, "krcc": 0.29}}}
    record = split_record(1, None, RunResults.from_dict(results, tmp_path / "results.json"))
    assert record.run == "d_split1" and record.iterations == 330
    assert record.release["srcc"] == 0.81 and record.honest["srcc"] == 0.67


# ---------------------------------------------------------------------------------------------- figure
def test_figure_draws_the_demo_runs_flagged_random_weights(tmp_path):
    demo_run(tmp_path)
    zero_shot(tmp_path)
    (tmp_path / "koniq_full").mkdir()
    (tmp_path / "koniq_full" / "summary.json").write_text(json.dumps(
        {"name": "koniq_full", "dataset": "koniq", "labels": None, "prompts": ["quality"], "splits": [1, 2],
         "config": None, "protocols": {"release": {"srcc": stat(0.925, n=2), "plcc": stat(0.93, n=2)}}}))
    report = build_results_table(tmp_path)
    paper = load_paper_results()
    points, not_drawn = chart_points(paper, report.results, select(paper, report.results))
    labels = [p.label for p in points]
    assert labels == ["T1 KonIQ", "UniQA_demo release", "UniQA_demo honest", "zero-shot demo ensemble",
                      "zero-shot demo single"]
    assert [p.ours for p in points] == [0.925, 0.901, 0.639, -0.090, 0.035]
    assert [p.random_weights for p in points] == [False, True, True, True, True]
    assert points[0].paper == paper["full_label"]["datasets"]["koniq10k"]["srcc"] and points[1].paper is None
    assert not_drawn == 9 + 6 + 9 - 1

    fig = build_figure(points, not_drawn)
    ax = fig.axes[0]
    assert RANDOM_TITLE in ax.get_title()
    texts = [t.get_text() for t in ax.texts]
    assert texts.count(RANDOM_LABEL) == 4  # on each random bar, not on KonIQ's
    ticks = {t.get_text(): t.get_color() for t in ax.get_yticklabels()}
    assert list(ticks) == labels and ticks["UniQA_demo release"] == "tab:red" and ticks["T1 KonIQ"] != "tab:red"
    hatched = [b for b in ax.patches if b.get_hatch() == "//"]
    assert sorted(round(b.get_width(), 3) for b in hatched) == [-0.09, 0.035, 0.639, 0.901]
    assert "no paper number" in texts
    assert any("23 paper cells without a result of ours are not drawn" in t.get_text() for t in fig.texts)
    with Image.open(report.png_path) as im:
        assert im.format == "PNG" and im.size[0] >= 800 and im.size[1] >= 400


def test_figure_without_random_weights_has_no_warning(tmp_path):
    demo_run(tmp_path, backbone="pretrained/UniQA_weight.pt")
    report = build_results_table(tmp_path)
    paper = load_paper_results()
    fig = build_figure(*chart_points(paper, report.results, select(paper, report.results)))
    ax = fig.axes[0]
    assert "RANDOM" not in ax.get_title() and RANDOM_LABEL not in [t.get_text() for t in ax.texts]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["UniQA_demo release", "UniQA_demo honest"]
    assert "RANDOM WEIGHTS" not in report.markdown


# ------------------------------------------------------------------------------------------ file names
FILE_NAME = re.compile(r"[\w./-]+\.(?:json|ya?ml|md|png|csv|py|pth?)\b")


def test_table_md_names_only_files_that_exist(tmp_path):
    """Every file name TABLE.md mentions is in the results folder, beside TABLE.md (TABLE.png) or in the
    package (here: the demo's results as the README makes them, a malformed file, a --limit zero-shot file)."""
    results = tmp_path / "results"
    demo_run(results)
    zero_shot(results)
    zero_shot(results, "koniq10k", limit=16)
    (results / "broken").mkdir()
    (results / "broken" / "summary.json").write_text("{")
    md = build_results_table(results, out_dir=tmp_path / "report").markdown
    names = set(FILE_NAME.findall(md))
    assert {"UniQA_demo/summary.json", "zero_shot/demo.json", "zero_shot/koniq10k.json", "broken/summary.json",
            "pyiqa/protocols/paper_results.yml"} <= names
    where = (results, tmp_path / "report", PACKAGE_ROOT)  # the results, TABLE.md's own folder, the package
    missing = [n for n in names if not any((folder / n).exists() for folder in where)]
    assert missing == [], md
