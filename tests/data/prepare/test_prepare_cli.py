"""The prepare_dataset.py command line, as a subprocess: --help lists every dataset; a user mistake is
one error line and exit status 2, no traceback, nothing written."""
from __future__ import annotations

from helpers import REPO, run_script
from pyiqa.data.prepare import PREPARERS

SCRIPT = str(REPO / "scripts" / "prepare_dataset.py")


def test_help_lists_all_fifteen_datasets_with_what_root_holds():
    out = run_script([SCRIPT, "--help"], cwd=REPO).stdout
    assert len(PREPARERS) == 15  # the 12 of the release's tables + AIGIQA-20K, ECIQAD, AGIN
    for preparer in PREPARERS.values():
        assert f"  {preparer.name:<10} {preparer.title}:" in out


def test_wrong_root_is_one_error_line_and_writes_nothing(tmp_path):
    proc = run_script([SCRIPT, "tid2013", "--root", str(tmp_path), "--out", str(tmp_path / "out")],
                      cwd=tmp_path, check=False)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "error: TID2013: expected 'mos_with_names.txt' under --root" in proc.stderr
    assert not (tmp_path / "out").exists()
