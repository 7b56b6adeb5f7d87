"""The ``pyiqa`` command: a folder with a bad file (real worker processes), --list, usage errors."""
import csv
import os
import shutil
import subprocess
import sys

import pytest

import pyiqa
from pyiqa.cli import main


@pytest.fixture
def folder(image_dir, tmp_path):
    """The test images plus one corrupt JPEG and a non-image file."""
    root = tmp_path / "photos"
    shutil.copytree(image_dir, root)
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a whole jpeg")
    (root / "notes.txt").write_text("not an image, not scored")
    return root


def test_folder_with_a_bad_file(folder, backbone_file, tmp_path):
    out_csv = tmp_path / "scores.csv"
    # the console script's main(), in a fresh process that also shows inference never imports the
    # training machinery (tensorboard)
    code = ("import sys; from pyiqa.cli import main; rc = main(); "
            "assert 'tensorboard' not in sys.modules, 'tensorboard imported'; sys.exit(rc)")
    cmd = [sys.executable, "-c", code,
           "uniqa", "-t", str(folder), "-o", str(out_csv), "--device", "cpu", "--backbone",
           str(backbone_file), "--workers", "2", "--batch-size", "3"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # as this process (see conftest.one_thread)
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    assert run.returncode == 1, run.stderr  # some files failed
    assert "FAILED broken.jpg: Cannot read image" in run.stderr
    assert "scored 4 of 5 images" in run.stderr
    with open(out_csv, newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["image", "score"]
    assert [r[0] for r in rows[1:]] == ["img0.jpg", "img1.png", "img2.jpg", "img3.png"]
    # the CLI (another process, worker decoding, batches of 3) gives this process's API scores:
    # scores are deterministic across processes
    metric = pyiqa.create_metric("uniqa", backbone=backbone_file)
    expected = metric(sorted(folder.glob("img*"))).tolist()
    assert [float(r[1]) for r in rows[1:]] == pytest.approx(expected, abs=1e-6)


def test_single_file_to_stdout(image_dir, backbone_file, capsys):
    assert main(["uniqa-single", "-t", str(image_dir / "img2.jpg"), "--backbone", str(backbone_file),
                 "-q"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0] == "image,score" and lines[1].startswith(str(image_dir / "img2.jpg") + ",")


def test_list(capsys, weights_env):
    assert main(["--list"]) == 0
    out = capsys.readouterr().out
    for name in pyiqa.list_models():
        assert name in out
    assert "missing: UniQA_weight.pt, uniqa_koniq_adapter.pth" in out


@pytest.mark.parametrize("args, message", [
    (["uniqa", "-t", "{empty}"], "No image files in folder"),
    (["uniqa", "-t", "{empty}/nope.jpg"], "does not exist"),
    (["uniqa"], "give a metric and -t"),
    (["uniqa-konik", "-t", "{empty}"], "Did you mean 'uniqa-koniq'"),
])
def test_usage_errors_exit_2(tmp_path, capsys, args, message):
    (tmp_path / "empty").mkdir()
    args = [a.replace("{empty}", str(tmp_path / "empty")) for a in args]
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_missing_weights_exit_2(weights_env, image_dir, capsys):
    assert main(["uniqa", "-t", str(image_dir)]) == 2
    assert "UniQA_weight.pt" in capsys.readouterr().err
