"""The README's main command, shortened: the shipped demo YAML builds its data, trains and visibly learns."""
from __future__ import annotations

import json
import re

import pytest

from helpers import REPO, run_script

pytestmark = pytest.mark.slow  # trains or runs installed commands in subprocesses: pytest -m 'not slow' skips it

SCORES = r"srcc: (-?[\d.]+)\s+plcc: (-?[\d.]+)"


def test_demo_yaml_builds_data_trains_and_beats_its_untrained_start(tmp_path):
    """README: test SRCC of the untrained network 0.38 -> 0.69 after training (random-tiny: not quality).

    10 of the demo's 30 epochs (cosine schedule compressed to match) already give the rise; the bound
    leaves room for bf16 machines, whose numbers differ a little.
    """
    proc = run_script([str(REPO / "train.py"), "-opt", str(REPO / "options/train/UniQA/demo.yml"), "--root",
                       str(tmp_path), "--force_yml", "train.total_epoch=10", "train.scheduler.T_max=10"],
                      cwd=tmp_path)
    assert (tmp_path / "datasets" / "demo" / "meta_info_demo.csv").is_file()  # built on first use
    assert "RANDOMLY INITIALISED" in proc.stdout and "NOT image quality" in proc.stdout
    assert "110 iterations" in proc.stdout  # 10 epochs x 91 training images (70/10/20 split) / batch 8
    assert "Validation val @ iter 0: srcc" in proc.stdout  # val.val_at_start: the curve's first point
    start = re.search(r"Test test \(untrained network, 26 images\): " + SCORES, proc.stdout)
    final = re.search(r"Test test \(final network, 26 images\): " + SCORES, proc.stdout)
    assert start and final, proc.stdout[-2000:]
    assert float(final.group(1)) >= float(start.group(1)) + 0.15, (start.group(0), final.group(0))
    results = json.loads((tmp_path / "experiments" / "UniQA_demo" / "results.json").read_text())
    assert results["test_untrained"]["test"]["srcc"] == pytest.approx(float(start.group(1)), abs=1e-4)
    assert (tmp_path / "experiments" / "UniQA_demo" / "models" / "net_latest.pth").is_file()
