"""The README's main command, shortened: the shipped demo YAML builds its data and trains end to end."""
from __future__ import annotations

import re

from helpers import REPO, run_script


def test_demo_yaml_builds_data_trains_and_reports_test_metrics(tmp_path):
    proc = run_script([str(REPO / "train.py"), "-opt", str(REPO / "options/train/UniQA/demo.yml"), "--root",
                       str(tmp_path), "--force_yml", "train.total_epoch=2", "train.scheduler.T_max=2"],
                      cwd=tmp_path)
    assert (tmp_path / "datasets" / "demo" / "meta_info_demo.csv").is_file()  # built on first use
    assert "RANDOMLY INITIALISED" in proc.stdout and "NOT image quality" in proc.stdout
    assert "22 iterations" in proc.stdout  # 2 epochs x 91 training images (70/10/20 split) / batch 8
    m = re.search(r"Test test \(final network, 26 images\): srcc: (-?[\d.]+)\s+plcc: (-?[\d.]+)", proc.stdout)
    assert m, proc.stdout[-2000:]
    assert -1 <= float(m.group(1)) <= 1 and -1 <= float(m.group(2)) <= 1
    assert (tmp_path / "experiments" / "UniQA_demo" / "models" / "net_latest.pth").is_file()
