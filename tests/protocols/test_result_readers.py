"""The protocol readers read only regular files of a bounded size: a result JSON or run config that is a
link to /dev/zero, a FIFO, a huge or deeply nested file is one clear message (or a skipped file), never a
read without end; and pyiqa-eval-zero-shot creates no folder a user named with --dataroot."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from pyiqa.protocols.commands import eval_zero_shot
from pyiqa.protocols.result_files import JSON_LIMIT, collect_results, read_json_object
from pyiqa.protocols.zero_shot import done_earlier
from pyiqa.utils.bounded_read import read_bounded
from pyiqa.utils.errors import DataError

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "results_table.py"


def _summary(root: Path, name: str = "good") -> Path:
    path = root / name / "summary.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"name": name, "dataset": "koniq", "labels": None, "prompts": ["quality"],
                                "splits": [1], "protocols": {"release": {"srcc": {"median": 0.9, "n": 1}}}}))
    return path


def _special(path: Path, kind: str) -> str:
    """Make ``path`` a special or oversized file; the words the error must contain."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "dev-zero":
        path.symlink_to("/dev/zero")
        return "is a character device, not a regular file"
    if kind == "fifo":
        os.mkfifo(path)
        return "is a FIFO (named pipe), not a regular file"
    if kind == "huge":
        with open(path, "wb") as f:
            f.truncate(JSON_LIMIT + 1)
        return "is larger than the 4 MiB cap"
    if kind == "deep":
        path.write_text("[" * 100_000 + "]" * 100_000)
        return "not valid JSON"
    raise ValueError(kind)


@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "huge", "deep"])
def test_zero_shot_json_that_is_special_is_skipped_or_fatal(tmp_path, kind, caplog):
    """Before: zero_shot/demo.json -> /dev/zero read until the kernel killed it at 23 GB; a FIFO blocked
    forever; a deep file raised RecursionError."""
    results = tmp_path / "results"
    _summary(results)
    bad = results / "zero_shot" / "demo.json"
    words = _special(bad, kind)
    collected = collect_results(results)
    assert [r.name for r in collected.runs] == ["good"]
    assert collected.skipped[0][0] == bad and words in collected.skipped[0][1]
    with pytest.raises(DataError, match=re.escape(str(bad))):
        collect_results(results, strict=True)


def test_results_table_command_on_dev_zero_is_one_line(tmp_path):
    folder = tmp_path / "results"
    _special(folder / "zero_shot" / "demo.json", "dev-zero")
    proc = subprocess.run([sys.executable, str(SCRIPT), str(folder)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and "1 file(s) skipped as malformed" in errors[0]
    assert "character device" in proc.stderr


def test_run_config_beside_a_summary_that_is_special_gives_unknown_backbone(tmp_path):
    """The per-split YAMLs beside a summary name its backbone; a link to /dev/zero there is reported."""
    results = tmp_path / "results"
    summary = _summary(results)
    _special(summary.parent / "configs" / "split_1.yml", "dev-zero")
    run = collect_results(results).runs[0]
    assert run.backbone == "unknown" and "character device" in run.backbone_note


def test_read_bounded_reads_regular_files_and_links_to_them(tmp_path):
    target = tmp_path / "a.json"
    target.write_bytes(b"{}")
    (tmp_path / "link.json").symlink_to(target)
    assert read_bounded(tmp_path / "link.json", 2) == b"{}"
    with pytest.raises(DataError, match=r"larger than the 1 bytes cap"):
        read_bounded(target, 1)
    with pytest.raises(DataError, match="is a folder"):
        read_json_object(tmp_path)
    with pytest.raises(DataError, match="cannot be read"):
        read_json_object(tmp_path / "missing.json")


@pytest.mark.parametrize("kind", ["dev-zero", "fifo", "huge"])
def test_zero_shot_resume_check_never_reads_a_special_file(tmp_path, kind):
    """pyiqa-eval-zero-shot reads <out>/<dataset>.json to skip finished datasets: a special file there is
    'recomputing' (and the atomic write then replaces it), not a read without end."""
    path = tmp_path / "demo.json"
    words = _special(path, kind)
    data, why = done_earlier(path, "random-tiny", None, ["uniqa"])
    assert data is None and words in why and why.endswith("recomputing")


def test_dataroot_for_the_demo_must_exist(tmp_path):
    """Before: --dataroot demo=<missing folder> created the folder and built the demo in it."""
    missing = tmp_path / "typo" / "demo"
    out = tmp_path / "out"
    with pytest.raises(DataError, match=re.escape(f"--dataroot demo={missing}: no such folder")):
        eval_zero_shot.main(["--datasets", "demo", "--dataroot", f"demo={missing}", "--backbone", "random-tiny",
                             "--out", str(out), "--device", "cpu"])
    assert not missing.exists() and not (tmp_path / "typo").exists() and not out.exists()
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    with pytest.raises(DataError, match="is a file, not a folder"):
        eval_zero_shot.main(["--datasets", "demo", "--dataroot", f"demo={a_file}", "--backbone", "random-tiny",
                             "--out", str(out), "--device", "cpu"])
