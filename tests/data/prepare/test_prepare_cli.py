"""The prepare_dataset.py command line, as a subprocess: --help lists every dataset; a user mistake is
one error line and exit status 2, no traceback, nothing written."""
from __future__ import annotations

from helpers import REPO, run_script
from layouts import agiqa3k
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


def test_few_label_larger_than_the_dataset_is_refused_with_its_size(tmp_path):
    # an explicit --few-label must fit; the defaults (50 100 200) are skipped on a small set instead
    root = tmp_path / "agiqa3k"
    agiqa3k.write(root, per_generator=1)
    proc = run_script([SCRIPT, "agiqa3k", "--root", str(root), "--out", str(tmp_path / "out"),
                       "--few-label", "2", str(10 ** 30)], cwd=tmp_path, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert ("error: --few-label 100000000000...(31 digits): AGIQA-3K has 6 images here, so the train part "
            "of its 80/20 splits holds 5; a few-label size must be from 1 to 5") in proc.stderr
    assert not (tmp_path / "out").exists()
    proc = run_script([SCRIPT, "agiqa3k", "--root", str(root), "--out", str(tmp_path / "out")], cwd=tmp_path)
    assert "no 50-label subsets" in proc.stderr and (tmp_path / "out" / "meta_info_AGIQA3KDataset.csv").is_file()
