"""pyiqa-build-corpus (and scripts/build_corpus.py) on JSONL files and images the test writes: the merged JSON exactly (order,
weights as repetition, duplicates, torn lines, missing images), the report's numbers and PNG, the CLI,
and the built corpus feeding a real train_clip run."""
from __future__ import annotations

import json
import logging
import re
import statistics
from collections import Counter
from pathlib import Path
from typing import Dict, List

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import REPO, run_script, write_yaml
from pyiqa.utils.errors import ConfigError, DataError
from train_clip.corpus.commands import build_corpus as command
from train_clip.corpus.build import STOP_WORDS, build_corpus

SCRIPT = str(REPO / "scripts" / "build_corpus.py")
Q = {"a.png": "A sharp photo with fine detail and good exposure, good colour.",
     "b.png": "A blurry photo with heavy noise and poor colour.",
     "c.png": "A noisy dark photo of bad quality."}
A = {"a.png": "Balanced composition with soft light and harmonious colour.",
     "sub/e.png": "A cluttered composition with harsh light; the colour is dull."}
C = {"a.png": ["Lovely soft light on the subject.", "Great colour harmony, great light."],
     "sub/e.png": ["Too busy, the light is harsh."]}
IMAGES = ["a.png", "b.png", "c.png", "sub/e.png"]


def _line(image: str, task: str, text: str) -> str:
    return json.dumps({"image": image, "task": task, "mos": 3.0, "level": "good", "prompt_version": "v1",
                       "model": "test-mllm", "text": text})


@pytest.fixture
def inputs(tmp_path) -> Dict[str, Path]:
    root = tmp_path / "images"
    for k, name in enumerate(IMAGES):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((40, 48, 3), 40 + 50 * k, np.uint8)).save(root / name)
    quality = tmp_path / "quality.jsonl"
    quality.write_text("\n".join([
        _line("a.png", "quality", Q["a.png"]), _line("b.png", "quality", Q["b.png"]),
        _line("./a.png", "quality", Q["a.png"] + "  "),    # the same text again: kept once
        "",                                                  # blank: ignored
        _line("gone.png", "quality", "A fair photo."),       # image not on disk: left out
        _line("c.png", "quality", " "),                      # empty text: line 6 invalid
        _line("c.png", "quality", Q["c.png"]),
        '{"image": "b.png", "task": "quality", "text": "A half wri']))  # torn last line (a crash)
    aesthetics = tmp_path / "aesthetics.jsonl"
    aesthetics.write_text("\n".join([_line("a.png", "aesthetics", A["a.png"]),
                                     _line("sub/e.png", "aesthetics", A["sub/e.png"]), "[1, 2]"]) + "\n")
    kept = tmp_path / "kept.jsonl"
    kept.write_text("\n".join(json.dumps({"image": i, "comments": c, "ar": [1] * len(c), "ir": [1] * len(c)})
                              for i, c in [("a.png", C["a.png"]), ("sub/e.png", C["sub/e.png"]), ("b.png", [])]))
    return {"root": root, "quality": quality, "aesthetics": aesthetics, "kept": kept, "tmp": tmp_path}


def _build(inputs, **kw):
    return build_corpus([inputs["quality"], inputs["aesthetics"]], inputs["root"], inputs["tmp"] / "corpus.json",
                        comments=[inputs["kept"]], **kw)


def test_merged_json_weights_order_duplicates_torn_lines_and_missing_images(inputs, caplog):
    with caplog.at_level(logging.WARNING):
        result = _build(inputs, weights=["quality.jsonl=2", "kept.jsonl=3"])
    expected = [
        {"image_path": "a.png",  # sources in command-line order, each text W times in a row
         "prompt": [Q["a.png"]] * 2 + [A["a.png"]] + [C["a.png"][0]] * 3 + [C["a.png"][1]] * 3},
        {"image_path": "b.png", "prompt": [Q["b.png"]] * 2},
        {"image_path": "c.png", "prompt": [Q["c.png"]] * 2},
        {"image_path": "sub/e.png", "prompt": [A["sub/e.png"]] + [C["sub/e.png"][0]] * 3},
    ]
    assert json.loads((inputs["tmp"] / "corpus.json").read_text(encoding="utf-8")) == expected
    assert result.entries == expected and result.missing == ["gone.png"]
    log = caplog.text
    assert f"'{inputs['quality']}' line 6: 'text' must be a non-empty string" in log
    assert f"'{inputs['quality']}' line 8 is not a complete JSON object" in log      # the torn line
    assert f"'{inputs['aesthetics']}' line 3 is not a complete JSON object" in log  # not an object, last
    assert "1 of 5 images are missing" in log and "gone.png" in log
    assert not list(inputs["tmp"].glob(".corpus*.tmp"))                     # atomic: no temp left
    # weight 1 everywhere: each text once; the same inputs give the same bytes
    _build(inputs)
    first = (inputs["tmp"] / "corpus.json").read_bytes()
    assert json.loads(first)[0]["prompt"] == [Q["a.png"], A["a.png"], *C["a.png"]]
    _build(inputs)
    assert (inputs["tmp"] / "corpus.json").read_bytes() == first


def test_user_errors_name_the_problem(inputs, tmp_path):
    with pytest.raises(ConfigError, match=r"'kept\.json' is not one of the inputs\. Did you mean 'kept\.jsonl'"):
        _build(inputs, weights=["kept.json=2"])
    with pytest.raises(ConfigError, match=r"W must be a positive integer"):
        _build(inputs, weights=["kept.jsonl=0"])
    with pytest.raises(DataError, match=r"None of the 4 images exists under --root '.*elsewhere'.*"
                                        r"first expected file is '.*elsewhere/a\.png'"):
        (tmp_path / "elsewhere").mkdir()
        build_corpus([inputs["quality"]], tmp_path / "elsewhere", tmp_path / "x.json")
    with pytest.raises(DataError, match=r"Descriptions file '.*nope\.jsonl' does not exist"):
        build_corpus([tmp_path / "nope.jsonl"], inputs["root"], tmp_path / "x.json")
    with pytest.raises(ConfigError, match=r"given twice"):
        build_corpus([inputs["quality"], inputs["quality"]], inputs["root"], tmp_path / "x.json")
    assert not (tmp_path / "x.json").exists()


def _tables(markdown: str) -> Dict[str, List[List[str]]]:
    """{heading: rows of cells} of every table (header row included, separator dropped)."""
    tables, heading = {}, ""
    for line in markdown.splitlines():
        if line.startswith("#"):
            heading = line.lstrip("# ").strip()
        elif line.startswith("|") and not line.startswith("|---"):
            tables.setdefault(heading, []).append([c.strip() for c in line.strip("|").split("|")])
    return tables


def test_report_numbers_and_png(inputs):
    result = _build(inputs, weights=["quality.jsonl=2", "kept.jsonl=3"])
    md = (inputs["tmp"] / "corpus_report.md").read_text(encoding="utf-8")
    assert result.report_md.name == "corpus_report.md"
    assert "Images: 4; prompt entries (with weights): 17; images with text from several sources: 2; " \
           "left out" in md and "gone.png" in md
    texts = {"quality.jsonl": list(Q.values()), "aesthetics.jsonl": list(A.values()),
             "kept.jsonl": [c for cs in C.values() for c in cs]}
    tables = _tables(md)
    # per image, the chance a draw comes from each source (weights 2, 1, 3)
    n = {"a.png": (2, 1, 6), "b.png": (2, 0, 0), "c.png": (2, 0, 0), "sub/e.png": (0, 1, 3)}
    share = [sum(v[k] / sum(v) for v in n.values()) / 4 for k in range(3)]
    assert tables["Sources"][1:] == [
        # invalid records are counted; a torn last line is only warned about (the reader skips it)
        ["quality.jsonl", "descriptions", "2", "3", "3", "6", f"{share[0]:.3f}", "1"],
        ["aesthetics.jsonl", "descriptions", "1", "2", "2", "2", f"{share[1]:.3f}", "0"],
        ["kept.jsonl", "comments", "3", "2", "3", "9", f"{share[2]:.3f}", "0"]]
    assert tables["Images by number of sources"][1:] == [["1", "2"], ["2", "1"], ["3", "1"]]
    lengths = {name: [len(t.split()) for t in ts] for name, ts in texts.items()}
    assert tables["Text length (words)"][1:] == [
        [name, str(min(v)), f"{statistics.median(v):.1f}", f"{statistics.mean(v):.1f}", str(max(v))]
        for name, v in lengths.items()]
    hist = tables["Text-length histogram (texts per length, words)"]
    assert hist[0] == ["words", *texts]
    bins = [(int(row[0].split("-")[0]), int(row[0].split("-")[-1])) for row in hist[1:]]  # "5" or "5-9"
    every = [n for v in lengths.values() for n in v]
    assert bins[0][0] == min(every) and bins[-1][0] <= max(every) <= bins[-1][1] and len(bins) <= 10
    assert all(b[0] == a[1] + 1 for a, b in zip(bins, bins[1:])) and len({b - a for a, b in bins}) == 1
    for row, (lo, hi) in zip(hist[1:], bins):
        assert row[1:] == [str(sum(lo <= n <= hi for n in lengths[name])) for name in texts]
    words = {name: Counter(w for t in ts for w in re.findall(r"[a-z]+", t.lower()) if w not in STOP_WORDS)
             for name, ts in texts.items()}
    total = sum(words.values(), Counter())
    top = sorted(total.items(), key=lambda kv: (-kv[1], kv[0]))[:30]
    assert tables["Most frequent words (top 30, stop words excluded)"][1:] == [
        [str(k), w, str(c), *(str(words[name][w]) for name in texts)] for k, (w, c) in enumerate(top, 1)]
    assert top[0] == ("colour", 5) and "with" not in total and "the" not in total
    png = inputs["tmp"] / "corpus_report.png"
    with Image.open(png) as im:
        im.verify()
    with Image.open(png) as im:
        assert im.format == "PNG" and im.size[0] > 600 and im.size[1] > 300
        assert np.asarray(im.convert("L")).std() > 5  # something is drawn


def test_cli_help_summary_and_error_exit(inputs, capsys):
    helped = run_script([SCRIPT, "--help"], cwd=inputs["tmp"])
    for flag in ("--descriptions", "--comments", "--root", "--out", "--weight", "SOURCE=W", "data_root"):
        assert flag in helped.stdout
    out = inputs["tmp"] / "cli" / "corpus.json"
    command.main(["--descriptions", str(inputs["quality"]), str(inputs["aesthetics"]),
                  "--comments", str(inputs["kept"]), "--root", str(inputs["root"]),
                  "--out", str(out), "--weight", "aesthetics.jsonl=4"])
    printed = capsys.readouterr().out
    assert f"{out}: 4 images, 14 prompt entries, 2 with text from several sources, 1 left out" in printed
    assert "aesthetics.jsonl" in printed and "x4" in printed and "corpus_report.png" in printed
    assert (out.parent / "corpus_report.md").is_file() and (out.parent / "corpus_report.png").is_file()
    bad = run_script([SCRIPT, "--descriptions", str(inputs["quality"]), "--root", str(inputs["root"]),
                      "--out", str(out), "--weight", "quality=x"], cwd=inputs["tmp"], check=False)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().splitlines()[-1].startswith("error: --weight 'quality=x'")


def test_built_corpus_trains_train_clip(inputs):
    from train_clip.trainer import main
    result = _build(inputs, weights=["quality.jsonl=2"])
    opt = {"name": "corpus_run", "num_gpu": 0, "manual_seed": 1, "precision": "fp32",
           "model": {"config": "tiny-64px"},
           "data": {"train": [{"type": "json", "path": str(result.out), "data_root": str(inputs["root"])}],
                    "num_workers": 0, "max_failed_fraction": 0.0},  # any unreadable image stops the run
           "train": {"batch_size": 4, "total_steps": 3, "lr": 1e-3, "warmup_steps": 1},
           "logger": {"print_freq": 1, "save_latest_freq": 3, "use_tb_logger": False}}
    yml = write_yaml(inputs["tmp"] / "corpus_run.yml", opt)
    out = main(["-opt", str(yml), "--root", str(inputs["tmp"])])
    exp = inputs["tmp"] / "experiments" / "corpus_run"
    assert out["step"] == 3 and np.isfinite(out["loss"])
    log = next(exp.glob("train_clip_corpus_run_*.log")).read_text()
    assert "corpus.json): 4 image-caption entries" in log
    assert [int(s) for s in re.findall(r"step +(\d+)/3\] loss", log)] == [1, 2, 3]
    assert "skipped images" not in log
    assert (exp / "training_states" / "3.state").is_file()
    exported = torch.load(out["export"], weights_only=True)
    assert "text_projection" in exported and exported["input_resolution"] == 64
