"""pyiqa-eval-zero-shot refuses, in one line with exit 2, what the bad-input sweep found it accepting:
a --dataroot for the demo that holds no demo build (it used to build the demo there, e.g. into /etc when
run as root), a missing --meta-dir, and a --device torch cannot parse (a RuntimeError traceback)."""
from __future__ import annotations

from pathlib import Path
from typing import List

import pytest
import torch

from pyiqa.protocols.commands import eval_zero_shot
from pyiqa.utils.entry import run_cli


def zero_shot(tmp_path: Path, *extra: str) -> List[str]:
    return ["--datasets", "demo", "--backbone", "random-tiny", "--limit", "4", "--workers", "0",
            "--out", str(tmp_path / "out"), *extra]


def error_line(argv: List[str], capsys) -> str:
    """The command's stderr for ``argv`` (run as the console script does); it must be one error line."""
    with pytest.raises(SystemExit) as stop:
        run_cli(lambda: eval_zero_shot.main(argv))
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.startswith("error: ")]
    assert len(lines) == 1 and err.endswith(lines[0] + "\n"), err
    return lines[0]


def snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else None for p in folder.rglob("*")}


def test_demo_dataroot_without_a_demo_build_is_refused_and_left_untouched(tmp_path, capsys):
    """Like /etc: an existing folder of other files. Nothing is built, deleted or written into it."""
    folder = tmp_path / "etc"
    (folder / "images").mkdir(parents=True)
    (folder / "passwd").write_text("root:x:0:0\n")
    (folder / "images" / "keep.png").write_bytes(b"not the demo")
    (folder / "meta_info_demo.csv").write_text("image_name,mos\n")  # a partial build is no build either
    before = snapshot(folder)
    line = error_line(zero_shot(tmp_path, "--dataroot", f"demo={folder}", "--device", "cpu"), capsys)
    assert line.startswith(f"error: demo: --dataroot demo={folder}: holds no complete demo dataset")
    assert "never created or written into" in line and "python -m pyiqa.data.demo_dataset --root DIR" in line
    assert snapshot(folder) == before and not (tmp_path / "out").exists()


def test_demo_dataroot_holding_a_build_is_read(demo_data, tmp_path):
    root = Path(demo_data["root"])
    before = {p: p.stat().st_mtime_ns for p in root.rglob("*")}
    result, = eval_zero_shot.main(zero_shot(tmp_path, "--dataroot", f"demo={root}", "--device", "cpu",
                                            "--models", "uniqa-single"))
    assert result.summary["images"] == 4
    assert {p: p.stat().st_mtime_ns for p in root.rglob("*")} == before


@pytest.mark.parametrize("kind", ["missing", "file"])
def test_meta_dir_must_be_a_folder(tmp_path, capsys, kind):
    meta = tmp_path / "meta"
    if kind == "file":
        meta.write_text("x")
    line = error_line(zero_shot(tmp_path, "--meta-dir", str(meta), "--device", "cpu"), capsys)
    what = "no such folder" if kind == "missing" else "is a file, not a folder"
    assert line == (f"error: --meta-dir '{meta}': {what}; expected the folder holding the meta CSVs "
                    "(as 'pyiqa-prepare-dataset NAME --out FOLDER' writes them)")
    assert not (tmp_path / "out").exists()


def test_device_that_is_not_one(tmp_path, capsys):
    line = error_line(zero_shot(tmp_path, "--device", "quantum"), capsys)
    assert line == "error: --device 'quantum' is not a device; expected cpu, cuda or cuda:N"


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is there: --device cuda is fine")
def test_cuda_on_a_machine_without_it(tmp_path, capsys):
    line = error_line(zero_shot(tmp_path, "--device", "cuda"), capsys)
    assert line == ("error: --device 'cuda': CUDA is not available on this machine "
                    "(torch.cuda.is_available() is False); use --device cpu")
