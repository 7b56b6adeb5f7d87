"""What the ``pyiqa`` command writes and spawns: -o never replaces an input and is written atomically
(a killed run leaves the old file), decoding workers never default to more than the usable cores."""
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from pyiqa.cli import _workers, main
from pyiqa.utils.threads import available_cores


@pytest.fixture
def photos(image_dir, tmp_path):
    root = tmp_path / "photos"
    shutil.copytree(image_dir, root)
    return root


def _refused(args, capsys, *intact):
    before = [p.read_bytes() for p in intact]
    assert main([str(a) for a in args]) == 2
    err = capsys.readouterr().err
    assert [p.read_bytes() for p in intact] == before
    return err


def test_output_that_is_an_input_is_refused(photos, backbone_file, tmp_path, capsys):
    common = ["uniqa-single", "--backbone", backbone_file, "-q"]
    image = photos / "img0.jpg"
    err = _refused([*common, "-t", photos, "-o", image], capsys, image)
    assert f"-o '{image}' is the input '{image}'" in err
    err = _refused([*common, "-t", image, "-o", photos / "." / "img0.jpg"], capsys, image)
    assert "refusing to overwrite it" in err
    (tmp_path / "link.jpg").symlink_to(image)
    assert "refusing" in _refused([*common, "-t", photos, "-o", tmp_path / "link.jpg"], capsys, image)
    os.link(photos / "img1.png", tmp_path / "hard.png")
    assert "refusing" in _refused([*common, "-t", photos, "-o", tmp_path / "hard.png"], capsys,
                                  photos / "img1.png")
    ref = photos / "img2.jpg"  # the ignored reference is protected too
    assert f"is the input '{ref}'" in _refused([*common, "-t", photos / "img3.png", "-r", ref, "-o", ref],
                                               capsys, ref)
    # a folder as -o is a scoring folder (part files): never the folder being scored
    assert "overlap" in _refused([*common, "-t", photos, "-o", photos], capsys)
    assert sorted(p.name for p in photos.iterdir()) == ["img0.jpg", "img1.png", "img2.jpg", "img3.png"]


def test_output_replaced_only_at_the_end(photos, backbone_file, tmp_path, capsys):
    out = tmp_path / "scores.csv"
    out.write_text("old results\n")
    assert main(["uniqa-single", "-t", str(photos), "--backbone", str(backbone_file), "-q",
                 "--workers", "0", "-o", str(out)]) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "image,uniqa-single" and len(lines) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos", "scores.csv"]  # no temp file
    assert f"wrote {out}" in capsys.readouterr().err


def test_killed_run_leaves_the_old_output(image_dir, backbone_file, tmp_path):
    """SIGKILL while scoring (the CSV being written): the old file is untouched, not half a CSV."""
    many = tmp_path / "many"
    many.mkdir()
    for k in range(1000):  # far more than a tiny model scores before the kill
        os.link(image_dir / "img2.jpg", many / f"{k:04d}.jpg")
    out = tmp_path / "scores.csv"
    out.write_text("old results\n")
    cmd = [sys.executable, "-c", "import sys; from pyiqa.cli import main; sys.exit(main())",
           "uniqa-single", "-t", str(many), "-o", str(out), "--backbone", str(backbone_file),
           "--device", "cpu", "--workers", "0", "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob(".scores.csv.*.tmp")):  # the CSV is being written
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the run never started writing"
            time.sleep(0.02)
        time.sleep(0.5)  # some rows scored
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL
    assert out.read_text() == "old results\n"


def test_default_workers_fit_the_usable_cores(capsys):
    cores = available_cores()
    assert _workers(None, 1) == 0
    assert 1 <= _workers(None, 50) <= min(4, cores)
    assert _workers(0, 50) == 0 and capsys.readouterr().err == ""
    assert _workers(cores + 1, 50) == cores + 1
    assert capsys.readouterr().err.count(f"--workers {cores + 1} is more than the {cores} core") == 1


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this platform")
def test_default_workers_follow_the_cpu_affinity():
    """Under taskset/a container's cpuset (one core here) the default is 1 worker, whatever the
    machine has."""
    code = ("import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
            "from pyiqa.cli import _workers; print(_workers(None, 50), _workers(None, 1))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "0"]
