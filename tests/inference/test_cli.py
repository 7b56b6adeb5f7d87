"""The ``pyiqa`` command in IQA-PyTorch's spelling and ours: several metrics in one run (real worker
processes, a bad file), -r/--ref, -ls/--list_models, --recursive, usage errors."""
import csv
import io
import os
import shutil
import subprocess
import sys

import pytest

import pyiqa
from inference_helpers import write_adapter
from pyiqa.cli import main

HEAVY = "[m for m in ('torch', 'open_clip') if m in sys.modules]"


@pytest.fixture
def folder(image_dir, tmp_path):
    """The test images plus one corrupt JPEG, a non-image file and an image in a subfolder."""
    root = tmp_path / "photos"
    shutil.copytree(image_dir, root)
    (root / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a whole jpeg")
    (root / "notes.txt").write_text("not an image, not scored")
    (root / "sub").mkdir()
    shutil.copy(image_dir / "img1.png", root / "sub" / "deep.png")
    return root


def run(args, capsys):
    """main(args) in this process: (exit status, CSV rows from stdout, stderr)."""
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, list(csv.reader(io.StringIO(out.out))), out.err


def test_two_metrics_with_ref_in_a_subprocess(folder, backbone_file):
    """IQA-PyTorch's spelling end to end: two metrics and -r in a fresh process (worker decoding,
    batches of 3, progress bar on), CSV on stdout and nothing else there."""
    # the console script's main(), in a fresh process that also shows inference never imports the
    # training machinery (tensorboard)
    code = ("import sys; from pyiqa.cli import main; rc = main(); "
            "assert 'tensorboard' not in sys.modules, 'tensorboard imported'; sys.exit(rc)")
    cmd = [sys.executable, "-c", code, "uniqa", "uniqa-single", "-t", str(folder), "-r", str(folder),
           "--device", "cpu", "--backbone", str(backbone_file), "--workers", "2", "--batch-size", "3"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}  # as this process (see conftest.one_thread)
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180, env=env)
    assert done.returncode == 1, done.stderr  # some files failed
    assert "100%" in done.stderr and "img/s" in done.stderr  # the progress bar was on, on stderr
    assert done.stderr.count("FAILED broken.jpg: Cannot read image") == 1
    assert done.stderr.count("-r/--ref") == 1 and "no-reference" in done.stderr
    assert "scored 4 of 5 images with uniqa, uniqa-single" in done.stderr
    lines = done.stdout.splitlines()
    rows = list(csv.reader(lines))
    assert rows[0] == ["image", "uniqa", "uniqa-single"]
    assert [r[0] for r in rows[1:]] == ["img0.jpg", "img1.png", "img2.jpg", "img3.png"]
    assert all(len(r) == 3 for r in rows) and len(lines) == 5  # only CSV lines on stdout
    # scores are deterministic across processes: the CLI gives this process's API scores
    images = sorted(folder.glob("img*"))
    for column, name in ((1, "uniqa"), (2, "uniqa-single")):
        expected = pyiqa.create_metric(name, backbone=backbone_file)(images).tolist()
        assert [float(r[column]) for r in rows[1:]] == pytest.approx(expected, abs=1e-6)


def test_two_metrics_equal_each_alone_and_ref_changes_nothing(folder, backbone_file, capsys):
    common = ["-t", folder, "--backbone", backbone_file, "--workers", "0", "-q"]
    code, both, err = run(["uniqa", "uniqa-single", *common, "-r", folder / "img0.jpg"], capsys)
    assert code == 1 and both[0] == ["image", "uniqa", "uniqa-single"]
    assert err.count("note: -r/--ref") == 1 and "does not exist" not in err
    assert err.count("FAILED broken.jpg") == 1  # once, not once per metric
    for column, name in ((1, "uniqa"), (2, "uniqa-single")):
        code, alone, err = run([name, *common], capsys)
        assert code == 1 and alone[0] == ["image", name] and "-r/--ref" not in err
        assert [(r[0], r[column]) for r in both[1:]] == [tuple(r) for r in alone[1:]]


def test_missing_ref_is_ignored_saying_it_does_not_exist(image_dir, backbone_file, tmp_path, capsys):
    image = image_dir / "img2.jpg"
    args = ["uniqa-single", "-t", image, "--backbone", backbone_file, "-q"]
    code, with_ref, err = run([*args, "--ref", tmp_path / "nope.png"], capsys)
    assert code == 0 and err.count("note:") == 1
    assert f"'{tmp_path / 'nope.png'}' does not exist" in err and "is a no-reference metric" in err
    assert run(args, capsys)[1] == with_ref


def test_metrics_with_different_crop_sizes_share_one_run(folder, backbone_file, tmp_path, capsys):
    """An adapter trained at another crop size is a second pass over the files; the columns are still
    those of each metric alone, and a bad file is reported once."""
    adapter = write_adapter(tmp_path / "net_best.pth",
                            arch={"type": "UniQA", "prompts": ["quality"], "sample_size": 256})
    common = ["-t", folder, "--backbone", backbone_file, "--workers", "0", "-q"]
    code, both, err = run(["uniqa-koniq", "uniqa", *common, "--adapter", adapter], capsys)
    assert code == 1 and both[0] == ["image", "uniqa-koniq", "uniqa"]
    assert err.count("FAILED broken.jpg") == 1
    _, koniq, _ = run(["uniqa-koniq", *common, "--adapter", adapter], capsys)
    _, zero_shot, _ = run(["uniqa", *common], capsys)
    assert [r[:2] for r in both] == koniq
    assert [[r[0], r[2]] for r in both[1:]] == zero_shot[1:]
    assert koniq[1][1] != zero_shot[1][1]


def test_recursive_is_long_only_and_r_is_ref(folder, backbone_file, capsys):
    common = ["uniqa-single", "-t", folder, "--backbone", backbone_file, "--workers", "0", "-q"]
    _, flat, _ = run(common, capsys)
    _, deep, _ = run([*common, "--recursive"], capsys)
    _, with_ref, err = run([*common, "-r", folder], capsys)  # once meant --recursive
    assert [r[0] for r in deep[1:]] == [r[0] for r in flat[1:]] + ["sub/deep.png"]
    assert with_ref == flat and "-r/--ref" in err
    assert main([*map(str, common), "-r"]) == 2  # -r takes a value now
    assert "-r/--ref: expected one argument" in capsys.readouterr().err


def test_single_file_to_stdout(image_dir, backbone_file, capsys):
    code, rows, _ = run(["uniqa-single", "-t", image_dir / "img2.jpg", "--backbone", backbone_file,
                         "-q"], capsys)
    assert code == 0 and rows[0] == ["image", "uniqa-single"]
    assert rows[1][0] == str(image_dir / "img2.jpg") and len(rows) == 2


@pytest.mark.parametrize("flag", ["-ls", "--list_models", "--list"])
def test_list_spellings(flag, capsys, weights_env):
    assert main([flag]) == 0
    out = capsys.readouterr()
    for name in pyiqa.list_models():
        assert name in out.out
    assert "missing: UniQA_weight.pt, uniqa_koniq_adapter.pth" in out.out
    assert out.err == ""


def test_list_with_a_metric_lists_says_so_and_imports_no_torch(weights_env):
    """IQA-PyTorch lists and returns when -ls comes with metric names; we say what was ignored, and
    the listing stays torch-free (instant)."""
    code = (f"import sys; from pyiqa.cli import main; rc = main(['-ls', 'uniqa', '-t', 'x.jpg']); "
            f"print('HEAVY', {HEAVY}); sys.exit(rc)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout and "uniqa-koniq" in done.stdout
    assert done.stderr.count("note:") == 1 and "ignored: uniqa, -t x.jpg" in done.stderr


@pytest.mark.parametrize("args, message", [
    (["uniqa", "-t", "{empty}"], "No image files in folder"),
    (["uniqa", "-t", "{empty}/nope.jpg"], "does not exist"),
    (["uniqa"], "-t/--target is required"),
    (["-t", "{empty}"], "give at least one metric name"),
    (["-t", "{empty}", "-r", "uniqa"], "-r is --ref"),
    ([], "give metric name(s) and -t"),
    (["uniqa-konik", "-t", "{empty}"], "Did you mean 'uniqa-koniq'"),
    (["uniqa", "-t", "{empty}", "--workers", "-1"], "--workers must be 0"),
    (["uniqa", "--nope", "-t", "{empty}"], "unrecognized arguments: --nope"),
])
def test_usage_errors_exit_2(tmp_path, capsys, args, message):
    (tmp_path / "empty").mkdir()
    args = [a.replace("{empty}", str(tmp_path / "empty")) for a in args]
    assert main(args) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("second, message", [("nope", "Unknown metric 'nope'"),
                                             ("uniqa-singel", "Did you mean 'uniqa-single'")])
def test_unknown_metric_among_several(second, message, image_dir, tmp_path, capsys):
    """Names are checked first: before the (missing) backbone, the images and the output file."""
    out = tmp_path / "scores.csv"
    args = ["uniqa", second, "-t", str(image_dir), "-o", str(out), "--backbone", str(tmp_path / "no.pt")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err and "no.pt" not in err
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_missing_weights_of_several_metrics_in_one_error(weights_env, image_dir, capsys):
    assert main(["uniqa", "uniqa-koniq", "uniqa-livec", "-t", str(image_dir)]) == 2
    err = capsys.readouterr().err
    assert err.count("'UniQA_weight.pt' (~300 MB), not found") == 1  # the shared backbone once
    assert "uniqa_koniq_adapter.pth" in err and "uniqa_livec_adapter.pth" in err


@pytest.mark.parametrize("metrics, message", [
    (["uniqa", "uniqa-single"], "none of uniqa, uniqa-single takes an adapter"),
    (["uniqa-koniq", "uniqa-livec"], "uniqa-koniq, uniqa-livec all take an adapter"),
])
def test_adapter_needs_one_owner(metrics, message, image_dir, backbone_file, tmp_path, capsys):
    adapter = write_adapter(tmp_path / "a.pth")
    assert main([*metrics, "-t", str(image_dir), "--backbone", str(backbone_file),
                 "--adapter", str(adapter)]) == 2
    assert message in capsys.readouterr().err
