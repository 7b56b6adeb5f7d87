"""``import pyiqa`` refuses to run beside IQA-PyTorch's distribution (both install the package ``pyiqa``)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _import_pyiqa(extra_path: Path) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(extra_path), str(REPO)]))
    return subprocess.run([sys.executable, "-c", "import pyiqa; print('imported', pyiqa.__version__)"],
                          capture_output=True, text=True, env=env, cwd=extra_path, timeout=120)


def test_foreign_pyiqa_metadata_is_refused_with_the_fix(tmp_path):
    info = tmp_path / "pyiqa-0.1.13.dist-info"  # what `pip install pyiqa` (IQA-PyTorch) leaves
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pyiqa\nVersion: 0.1.13\n")
    out = _import_pyiqa(tmp_path)
    assert out.returncode != 0 and "imported" not in out.stdout
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("pyiqa._foreign.ForeignPyiqaError: IQA-PyTorch (distribution 'pyiqa' 0.1.13")
    assert str(info) in last and "own virtual environment" in last and "pip uninstall pyiqa" in last


def test_without_it_import_works(tmp_path):
    (tmp_path / "pyiqa_uniqa-9.9.dist-info").mkdir()  # our own name is not foreign
    (tmp_path / "pyiqa_uniqa-9.9.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: pyiqa-uniqa\nVersion: 9.9\n")
    out = _import_pyiqa(tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("imported")
