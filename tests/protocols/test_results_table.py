"""scripts/results_table.py and pyiqa.protocols.results_table: synthetic result files in, Markdown cells,
notes and a PNG out; malformed inputs and a bad paper YAML are one clear message each."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Optional

import pytest
import yaml
from PIL import Image

from pyiqa.protocols.paper_results import PAPER_YAML, canonical_dataset, load_paper_results
from pyiqa.protocols.result_files import collect_results
from pyiqa.protocols.results_table import build_results_table
from pyiqa.utils.errors import ConfigError, DataError

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "results_table.py"

# UNIQA_REFERENCE.md section 6, written out independently of the shipped YAML.
REFERENCE_FULL = {"tid2013": (0.916, 0.931), "koniq10k": (0.933, 0.941), "livec": (0.890, 0.905),
                  "live": (0.981, 0.983), "ava": (0.776, 0.776), "aadb": (0.786, 0.787)}
REFERENCE_ZERO_SHOT = {"livec": (0.638, 0.790), "koniq10k": (0.667, 0.806), "agiqa3k": (0.744, 0.752)}
REFERENCE_FEW = {"livec": (0.828, 0.849, 0.853), "koniq10k": (0.844, 0.860, 0.876), "live": (0.963, 0.958, 0.976)}


def stats(median: Optional[float], n: int) -> Dict[str, Optional[float]]:
    """As the split runner writes them: std null for one split, all null for no finite value."""
    if median is None:
        return {"median": None, "mean": None, "std": None, "n": 0}
    return {"median": median, "mean": median - 0.001, "std": 0.004 if n > 1 else None, "n": n}


def write_summary(root: Path, name: str, dataset: str, srcc: float, plcc: Optional[float] = None, n: int = 10,
                  labels: Optional[int] = None, prompts=("quality",), honest: Optional[tuple] = None,
                  config: Optional[Path] = None, mtime: Optional[float] = None, **extra: Any) -> Path:
    release = {"srcc": stats(srcc, n)}
    if plcc is not None:
        release["plcc"] = stats(plcc, n)
    protocols: Dict[str, Any] = {"release": release}
    if honest:
        protocols["honest"] = {"srcc": stats(honest[0], n), "plcc": stats(honest[1], n)}
    data = {"name": name, "dataset": dataset, "config": str(config) if config else None, "labels": labels,
            "prompts": list(prompts), "splits": list(range(1, n + 1)), "protocols": protocols, **extra}
    if not honest:
        data["honest_unavailable"] = "the split file holds no validation part"
    path = root / name / "summary.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(data))
    if mtime is not None:
        os.utime(path, (mtime, mtime))
    return path


def write_zero_shot(root: Path, dataset: str, single: float, ensemble: float, random_weights: bool = False,
                    limit: Optional[int] = None) -> Path:
    path = root / "zero_shot" / f"{dataset}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    models = {"uniqa": {"srcc": ensemble, "plcc": ensemble, "krcc": ensemble / 2},
              "uniqa-single": {"srcc": single, "plcc": single, "krcc": single / 2}}
    path.write_text(json.dumps({"dataset": dataset, "images": 1162, "backbone": "random" if random_weights else
                                "pretrained/UniQA_weight.pt", "random_weights": random_weights, "models": models,
                                "limit": limit}))
    return path


def write_config(path: Path, backbone: str) -> Path:
    path.write_text(yaml.safe_dump({"name": path.stem, "network": {"type": "UniQA", "backbone": backbone}}))
    return path


def tables(markdown: str) -> Dict[str, Dict[str, Dict[str, str]]]:
    """``{section heading: {row label: {column: cell}}}`` of every Markdown table."""
    out: Dict[str, Dict[str, Dict[str, str]]] = {}
    section, header = "", None
    for line in markdown.splitlines():
        if line.startswith("## "):
            section, header = line[3:], None
        elif line.startswith("|") and not line.startswith("|---"):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if header is None:
                header = cells
            else:
                out.setdefault(section, {})[cells[0]] = dict(zip(header[1:], cells[1:]))
        elif not line.startswith("|"):
            header = None
    return out


def section(parsed: Dict[str, Any], prefix: str) -> Dict[str, Dict[str, str]]:
    return next(v for k, v in parsed.items() if k.startswith(prefix))


def test_cells_against_the_paper(tmp_path):
    """The real script: our medians, the YAML's paper numbers, their differences, n/a, splits, PNG."""
    results = tmp_path / "results"
    paper = load_paper_results()
    full, zero, few = (paper[k]["datasets"] for k in ("full_label", "zero_shot", "few_label"))
    backbone = tmp_path / "UniQA_weight.pt"
    cfg = write_config(tmp_path / "koniq.yml", str(backbone))
    write_summary(results, "koniq_full", "koniq", 0.9251, 0.9377, n=5, honest=(0.9102, 0.9199), config=cfg)
    write_summary(results, "tid_full", "tid2013", 0.9004, 0.9113, n=3, config=cfg)
    write_summary(results, "livec_100", "livec", 0.8312, labels=100,
                  prompts=("quality", "blur", "noise", "lowhigh"), n=10, config=cfg)
    write_zero_shot(results, "koniq", single=0.6543, ensemble=0.8011)

    proc = subprocess.run([sys.executable, str(SCRIPT), str(results)], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    parsed = tables(proc.stdout)
    assert (results / "TABLE.md").read_text() == proc.stdout

    t1 = section(parsed, "Table 1")
    s, p = full["koniq10k"]["srcc"], full["koniq10k"]["plcc"]
    assert t1["UniQA (paper)"]["KonIQ"] == f"{s:.3f} / {p:.3f}"
    assert t1["ours, release protocol"]["KonIQ"] == "0.925 / 0.938"
    assert t1["difference, release - paper"]["KonIQ"] == f"{0.9251 - s:+.3f} / {0.9377 - p:+.3f}"
    assert t1["ours, honest protocol"]["KonIQ"] == "0.910 / 0.920"
    assert t1["difference, honest - paper"]["KonIQ"] == f"{0.9102 - s:+.3f} / {0.9199 - p:+.3f}"
    assert t1["splits (release / honest)"]["KonIQ"] == "5 / 5"
    assert t1["splits (release / honest)"]["TID2013"] == "3 / n/a"
    assert t1["ours, honest protocol"]["TID2013"] == "n/a"
    assert t1["backbone"]["KonIQ"] == "UniQA_weight.pt"
    assert t1["run"]["KonIQ"] == "koniq_full"
    assert t1["ours, release protocol"]["CSIQ"] == "n/a" and t1["difference, release - paper"]["CSIQ"] == "n/a"
    assert t1["best other (paper)"]["LIVE"] == "n/a"
    assert "TID2013: honest protocol unavailable for tid_full: the split file holds no validation part" \
        in proc.stdout
    t23 = section(parsed, "Tables 2-3")
    assert t23["ours, release protocol"] == {"AVA": "n/a", "AADB": "n/a"}

    t4 = section(parsed, "Table 4")
    assert t4["ours single cue (uniqa-single)"]["KonIQ"] == "0.654"
    assert t4["difference, single cue"]["KonIQ"] == f"{0.6543 - zero['koniq10k']['single']:+.3f}"
    assert t4["difference, ensemble"]["KonIQ"] == f"{0.8011 - zero['koniq10k']['ensemble']:+.3f}"
    assert t4["ours ensemble (uniqa)"]["CLIVE"] == "n/a" and t4["images"]["KonIQ"] == "1162"

    t5 = section(parsed, "Table 5")
    assert t5["UniQA (paper)"]["CLIVE 100"] == f"{few['livec']['labels_100']:.3f}"
    assert t5["ours, release protocol"]["CLIVE 100"] == "0.831"
    assert t5["difference, release - paper"]["CLIVE 100"] == f"{0.8312 - few['livec']['labels_100']:+.3f}"
    assert t5["splits (release / honest)"]["CLIVE 100"] == "10 / n/a"
    assert t5["ours, release protocol"]["CLIVE 50"] == "n/a"
    assert "RANDOM WEIGHTS" not in proc.stdout and "Backbone unknown" not in proc.stdout

    png = results / "TABLE.png"
    assert png.stat().st_size > 0 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(png) as im:
        im.verify()


def test_random_weights_unknown_backbone_and_choice_of_run(tmp_path):
    """Loud notes for random weights (config backbone or zero-shot flag) and unknown backbones; of two
    runs of one cell the paper's variant, then the most splits, wins; the other is listed with its numbers."""
    results = tmp_path / "results"
    tiny = write_config(tmp_path / "demo.yml", "random-tiny")
    write_summary(results, "koniq_3", "koniq10k", 0.61, 0.62, n=3, config=tiny, mtime=1000)
    write_summary(results, "koniq_10", "koniq", 0.71, 0.72, n=10, config=tiny, mtime=500)
    real = write_config(tmp_path / "real.yml", str(tmp_path / "UniQA_weight.pt"))
    ens = write_summary(results, "koniq_ens", "koniq", 0.81, 0.82, n=10, prompts=("quality", "blur"), config=real,
                        mtime=2000)
    (ens.parent / "configs").mkdir()  # the split runner's per-split YAMLs: what ran, overrides included
    write_config(ens.parent / "configs" / "koniq_ens_split01.yml", "random")
    write_summary(results, "spaq_nocfg", "spaq", 0.5, None, n=1, config=tmp_path / "gone.yml",
                  cross={"koniq": {"srcc": stats(0.44, 1), "plcc": stats(None, 1)}})
    write_zero_shot(results, "livec", 0.1, 0.2, random_weights=True, limit=16)

    report = build_results_table(results, out_dir=tmp_path / "out")
    md = report.markdown
    assert (tmp_path / "out" / "TABLE.md").is_file() and (tmp_path / "out" / "TABLE.png").stat().st_size > 0
    assert "**WARNING: RANDOM WEIGHTS.**" in md
    assert "`koniq_10/summary.json` (backbone random-tiny)" in md  # named inside the results folder
    assert "`zero_shot/livec.json` (random_weights: true, backbone random)" in md
    assert "`koniq_ens/summary.json` (backbone random)" in md and ens.is_file()
    assert "**Backbone unknown**" in md and "gone.yml' not found" in md
    parsed = tables(md)
    t1 = section(parsed, "Table 1")
    assert t1["run"]["KonIQ"] == "koniq_10" and t1["backbone"]["KonIQ"] == "random-tiny (RANDOM)"
    assert t1["backbone"]["SPAQ"] == "unknown"
    assert section(parsed, "Table 4")["backbone"]["CLIVE"] == "random (RANDOM)"
    assert "KonIQ: 3 runs fit; shown: koniq_10 (10 splits); also: koniq_3 (3 splits), koniq_ens (10 splits)" in md
    others = section(parsed, "Other results")
    assert others["koniq_3"]["SRCC"] == "0.610" and "not chosen" in others["koniq_3"]["what"]
    assert others["koniq_ens"]["PLCC"] == "0.820"
    assert t1["ours, release protocol"]["SPAQ"] == "0.500 / n/a"
    assert t1["splits (release / honest)"]["SPAQ"] == "1 / n/a"
    assert others["spaq_nocfg"]["dataset"] == "koniq10k" and others["spaq_nocfg"]["SRCC"] == "0.440"
    assert others["spaq_nocfg"]["PLCC"] == "n/a" and others["spaq_nocfg"]["splits / images"] == "1 split"
    assert "CLIVE: zero_shot/livec.json scored only the first 16 images (--limit)" in md


@pytest.mark.parametrize("content, expected", [
    ("{not json", "not valid JSON"),
    ("[1, 2]", "must hold a JSON object"),
    (json.dumps({"name": "x", "protocols": {"release": {}}}), "key 'dataset' is missing"),
    (json.dumps({"dataset": "koniq", "protocols": {"release": {"srcc": {"median": "high"}}}}),
     "'protocols.release.srcc.median' must be a number or null, got 'high'"),
    (json.dumps({"dataset": "koniq", "labels": "fifty", "protocols": {"release": {}}}), "'labels' must be"),
], ids=["torn", "not-object", "no-dataset", "non-number", "bad-labels"])
def test_malformed_summary_is_skipped_or_fatal(tmp_path, content, expected, caplog):
    results = tmp_path / "results"
    write_summary(results, "good", "koniq", 0.9, 0.9)
    bad = results / "bad" / "summary.json"
    bad.parent.mkdir()
    bad.write_text(content)
    collected = collect_results(results)
    assert [r.name for r in collected.runs] == ["good"]
    assert collected.skipped[0][0] == bad and expected in collected.skipped[0][1]
    assert str(bad) in caplog.text and expected in caplog.text
    with pytest.raises(DataError, match=str(bad)):
        collect_results(results, strict=True)


def test_malformed_zero_shot_names_the_key(tmp_path):
    path = write_zero_shot(tmp_path, "livec", 0.5, 0.6)
    data = json.loads(path.read_text())
    data["random_weights"] = "no"
    path.write_text(json.dumps(data))
    with pytest.raises(DataError, match=r"livec\.json: 'random_weights' must be true or false, got 'no'"):
        collect_results(tmp_path, strict=True)


@pytest.mark.parametrize("setup, expected", [
    ("missing", "results folder '.*missing' does not exist"),
    ("empty", "no results in '.*empty': expected <name>/summary.json"),
    ("only_bad", r"no results in '.*only_bad'; 1 file\(s\) skipped as malformed"),
], ids=["missing", "empty", "only-bad"])
def test_cli_errors_are_one_line(tmp_path, setup, expected):
    folder = tmp_path / setup
    if setup != "missing":
        folder.mkdir()
    if setup == "only_bad":
        (folder / "run").mkdir()
        (folder / "run" / "summary.json").write_text("{")
    proc = subprocess.run([sys.executable, str(SCRIPT), str(folder)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    error_lines = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1
    assert re.search(expected, error_lines[0]), proc.stderr
    assert not (folder / "TABLE.md").exists()


def test_shipped_yaml_matches_the_reference():
    paper = load_paper_results()
    full, zero, few = (paper[k]["datasets"] for k in ("full_label", "zero_shot", "few_label"))
    for ds, (s, p) in REFERENCE_FULL.items():
        assert (full[ds]["srcc"], full[ds]["plcc"]) == (s, p), ds
    for ds, (single, ensemble) in REFERENCE_ZERO_SHOT.items():
        assert (zero[ds]["single"], zero[ds]["ensemble"]) == (single, ensemble), ds
    for ds, values in REFERENCE_FEW.items():
        assert tuple(few[ds][f"labels_{n}"] for n in (50, 100, 200)) == values, ds
    assert full["koniq10k"]["table"] == "1" and full["ava"]["table"] == "2-3" and zero["livec"]["table"] == "4"
    assert full["live"]["best_other_srcc"] is None and full["livec"]["best_other_srcc"] == 0.931
    assert len(full) == 9 and set(few) == {"livec", "koniq10k", "live"}
    assert paper["few_label"]["variant"] == "ensemble"
    assert canonical_dataset("koniq") == "koniq10k" and canonical_dataset("CLIVE") == "livec"


@pytest.mark.parametrize("edit, expected", [
    (lambda d: d["full_label"]["datasets"]["koniq10k"].update(srcx=0.9),
     r"unknown key 'full_label\.datasets\.koniq10k\.srcx'\. Did you mean 'srcc'\?"),
    (lambda d: d["full_label"]["datasets"]["koniq10k"].update(srcc="0.93"),
     r"'full_label\.datasets\.koniq10k\.srcc' must be a correlation.*got '0\.93'"),
    (lambda d: d["few_label"]["datasets"]["live"].update(labels_50=1.5),
     r"'few_label\.datasets\.live\.labels_50' must be a correlation.*got 1\.5"),
    (lambda d: d["zero_shot"]["datasets"].update(koniq=d["zero_shot"]["datasets"]["koniq10k"]),
     r"unknown dataset 'zero_shot\.datasets\.koniq'\. Did you mean 'koniq10k'\?"),
    (lambda d: d["zero_shot"]["datasets"]["livec"].pop("single"),
     r"'zero_shot\.datasets\.livec' lacks key\(s\) single"),
    (lambda d: d["full_label"].update(variant="multi"), r"'full_label\.variant' must be one of single, ensemble"),
    (lambda d: d["full_label"]["datasets"]["ava"].update(table="2"),
     r"'full_label\.datasets\.ava\.table' must be one of '1', '2-3' in this section, got '2'"),
], ids=["typo-key", "string-number", "out-of-range", "config-name-as-key", "missing-key", "bad-variant",
        "bad-table"])
def test_paper_yaml_loader_names_the_bad_entry(tmp_path, edit, expected):
    data = yaml.safe_load(PAPER_YAML.read_text())
    edit(data)
    path = tmp_path / "paper.yml"
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=expected):
        load_paper_results(path)


def test_datasets_without_published_numbers_are_listed_not_filled_in(tmp_path):
    paper = load_paper_results()
    assert set(paper["not_found"]) == {"aigiqa20k", "eciqad", "agin"}
    assert all(set(entry) == {"claimed_in", "searched"} for entry in paper["not_found"].values())
    assert not set(paper["not_found"]) & {ds for s in ("full_label", "zero_shot", "few_label")
                                          for ds in paper[s]["datasets"]}
    data = yaml.safe_load(PAPER_YAML.read_text())
    data["not_found"]["koniq10k"] = {"claimed_in": "x", "searched": "y"}
    (tmp_path / "numbers.yml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"'not_found\.koniq10k': the file gives numbers for 'koniq10k'"):
        load_paper_results(tmp_path / "numbers.yml")
    data["not_found"] = {"agin": {"claimed_in": "x"}}
    (tmp_path / "short.yml").write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match=r"'not_found\.agin' lacks key\(s\) searched"):
        load_paper_results(tmp_path / "short.yml")
    del data["not_found"]
    (tmp_path / "none.yml").write_text(yaml.safe_dump(data))
    assert load_paper_results(tmp_path / "none.yml")["not_found"] == {}
