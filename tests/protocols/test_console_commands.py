"""The installed console commands of the protocol, dataset and corpus tools, run as a user runs them: real
subprocesses from an empty folder outside the clone (no PYTHONPATH), so nothing they need may come from
the repository tree or the current folder."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sysconfig
from pathlib import Path
from typing import List

import pytest

from pyiqa.protocols.zero_shot import shipped_test_configs

pytestmark = pytest.mark.slow  # trains or runs installed commands in subprocesses: pytest -m 'not slow' skips it

COMMANDS = ("pyiqa-prepare-dataset", "pyiqa-run-splits", "pyiqa-eval-zero-shot", "pyiqa-results-table",
            "pyiqa-generate-descriptions", "pyiqa-purify-comments", "pyiqa-build-corpus")


def command(name: str) -> str:
    """The installed script (pip install -e . / pip install . create it beside the interpreter)."""
    path = shutil.which(name, path=sysconfig.get_path("scripts")) or shutil.which(name)
    assert path, f"console command '{name}' is not installed: run `pip install -e .` (setup.py entry_points)"
    return path


def run(args: List[str], cwd: Path, timeout: int = 120) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["OMP_NUM_THREADS"] = "2"
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("name", COMMANDS)
def test_help_from_an_empty_folder(name, tmp_path):
    proc = run([command(name), "--help"], tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith(f"usage: {name} ")
    assert "scripts/" not in proc.stdout.replace("scripts/mllm_stub_server.py", "")  # commands, not paths
    assert list(tmp_path.iterdir()) == []


def test_user_error_is_one_line_and_exit_2(tmp_path):
    proc = run([command("pyiqa-run-splits"), "-opt", "UniQA/dmo"], tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: 'UniQA/dmo' is neither a file nor an installed training config")
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_eval_zero_shot_demo_outside_the_clone(tmp_path):
    """The demo's test config is found as package data; the demo data and results/ land in the cwd."""
    proc = run([command("pyiqa-eval-zero-shot"), "--datasets", "demo", "--backbone", "random-tiny",
                "--limit", "6", "--workers", "0", "--device", "cpu"], tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "results" / "zero_shot" / "demo.json").read_text())
    assert summary["config"] == str(shipped_test_configs() / "demo.yml")
    assert summary["images"] == 6 and set(summary["models"]) == {"uniqa", "uniqa-single"}
    assert (tmp_path / "results" / "zero_shot" / "demo_predictions.csv").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["datasets", "results"]
    assert "demo: results/zero_shot/demo.json" in proc.stdout
