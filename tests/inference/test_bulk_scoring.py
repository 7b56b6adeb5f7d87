"""Scoring a collection into a folder (``pyiqa METRIC -t ... -o OUT/``): every input kind, 1 vs 2 gloo
ranks under torchrun, a SIGKILL then --resume, error rows, manifests that refuse other settings."""
from __future__ import annotations

import csv
import io
import json
import os
import random
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from PIL import Image

from inference_helpers import smooth_image, write_backbone
from pyiqa.cli import main
from pyiqa.inference.collection import expand_braces, plan_collection

N_IMAGES = 14


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    """14 images in a folder, and the same images as a list, a CSV, and two tar shards (with a JSON
    metadata member each, as webdataset writes them)."""
    root = tmp_path_factory.mktemp("collection")
    images = root / "images"
    images.mkdir()
    names = []
    for k in range(N_IMAGES):
        name = f"img{k:02d}.{'png' if k % 3 else 'jpg'}"
        Image.fromarray(smooth_image(96 + 8 * k, 128, k)).save(images / name, quality=90)
        names.append(name)
    (root / "list.txt").write_text("# images to score\n" + "".join(f"images/{n}\n" for n in names))
    (root / "table.csv").write_text("id,path,mos\n" + "".join(f"{k},images/{n},{k}\n" for k, n in enumerate(names)))
    shards = root / "shards"
    shards.mkdir()
    for s in range(2):
        with tarfile.open(shards / f"{s:05d}.tar", "w") as tar:
            for n in names[s * 7:(s + 1) * 7]:
                tar.add(images / n, arcname=n)
            meta = json.dumps({"shard": s}).encode()
            info = tarfile.TarInfo(f"{s:05d}.json")
            info.size = len(meta)
            tar.addfile(info, io.BytesIO(meta))
    return {"root": root, "names": names}


def read_scores(path: Path):
    with open(path, newline="") as f:
        return list(csv.reader(f))


def score(args, cwd: Path) -> subprocess.CompletedProcess:
    """``pyiqa ARGS`` in a fresh process (the console script's main)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-c", "import sys; from pyiqa.cli import main; sys.exit(main())",
                           *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def torchrun(args, cwd: Path, port: int, wait: bool = True):
    """``torchrun --nproc_per_node 2 -m pyiqa ARGS`` (gloo on CPU)."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={port}",
           "-m", "pyiqa", *map(str, args)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    if not wait:
        return subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, start_new_session=True)
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_brace_expansion_and_units(collection):
    assert expand_braces("s/{00008..00011}.tar") == ["s/00008.tar", "s/00009.tar", "s/00010.tar", "s/00011.tar"]
    assert expand_braces("{a,b}/{1..2}") == ["a/1", "a/2", "b/1", "b/2"]
    root = collection["root"]
    folder = plan_collection(str(root / "images"), part_rows=5)
    assert [len(u.refs) for u in folder.units] == [5, 5, 4] and folder.key_column == "path"
    listed = plan_collection(str(root / "list.txt"), part_rows=5)
    assert [r.key for u in listed.units for r in u.images()] == [f"images/{n}" for n in collection["names"]]
    shards = plan_collection(str(root / "shards" / "{00000..00001}.tar"))
    members = [r.key for u in shards.units for r in u.images()]
    assert len(shards.units) == 2 and len(members) == N_IMAGES  # the JSON members are metadata, skipped
    assert members[0].endswith("shards/00000.tar/img00.jpg")


@pytest.mark.slow
@pytest.mark.parametrize("kind,target,port", [
    ("folder", "images", 29701), ("list", "list.txt", 29702), ("table", "table.csv", 29703),
    ("shards", "shards/{00000..00001}.tar", 29704)])
def test_one_and_two_ranks_give_the_same_rows(collection, backbone_file, tmp_path, kind, target, port):
    root = collection["root"]
    common = ["uniqa-single", "-t", target, "--backbone", backbone_file, "--part-rows", 4, "--workers", 0, "-q"]
    one = score([*common, "-o", f"{tmp_path / 'one'}/"], root)
    assert one.returncode == 0, one.stderr
    two = torchrun([*common, "-o", f"{tmp_path / 'two'}/"], root, port)
    assert two.returncode == 0, two.stdout + two.stderr
    rows = read_scores(tmp_path / "one" / "scores.csv")
    assert read_scores(tmp_path / "two" / "scores.csv") == rows  # the same rows, scores to the digit
    assert rows[0] == ["key" if kind == "shards" else "path", "uniqa-single", "error"]
    assert len(rows) == N_IMAGES + 1 and all(r[2] == "" and 0 < float(r[1]) < 1 for r in rows[1:])
    assert [r[0] for r in rows[1:]] == sorted(r[0] for r in rows[1:])
    parts = sorted(p.name for p in (tmp_path / "two" / "parts").iterdir())
    expected = 2 if kind == "shards" else 4  # a shard is a part; 14 rows in parts of 4
    assert parts == [f"part-{i:06d}.csv" for i in range(expected)]
    assert "rank 0:" in two.stderr + two.stdout and "rank 1:" in two.stderr + two.stdout


@pytest.mark.slow
def test_sigkill_then_resume_keeps_one_row_per_input(collection, backbone_file, tmp_path):
    """Kill a 2-rank run (the whole process group, SIGKILL) at a random moment after its first part is
    written; the same command with --resume ends with exactly one row per input and the same scores."""
    root = collection["root"]
    common = ["uniqa-single", "-t", "images", "--backbone", backbone_file, "--part-rows", 1, "--workers", 0,
              "-q"]
    reference = score([*common, "-o", f"{tmp_path / 'ref'}/"], root)
    assert reference.returncode == 0, reference.stderr
    out = tmp_path / "killed"
    run = torchrun([*common, "-o", f"{out}/"], root, 29711, wait=False)
    deadline = time.time() + 120
    while not list((out / "parts").glob("part-*.csv")) and time.time() < deadline and run.poll() is None:
        time.sleep(0.02)
    time.sleep(random.uniform(0, 0.1))
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    kept = len(list((out / "parts").glob("part-*.csv")))
    assert not (out / "scores.csv").exists() or kept == N_IMAGES  # killed before the merge (almost surely)
    resumed = torchrun([*common, "-o", f"{out}/", "--resume"], root, 29712)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert read_scores(out / "scores.csv") == read_scores(tmp_path / "ref" / "scores.csv")
    assert not list((out / "parts").glob(".part-*.tmp"))  # what the killed writes left is removed
    if kept:
        assert "finished earlier kept" in resumed.stdout + resumed.stderr


def test_unreadable_inputs_are_error_rows(collection, backbone_file, tmp_path, capsys):
    """A corrupt member in a tar, a missing path in a list, a non-image file and a 0-byte file: each one
    row with the reason; the others are scored and the exit status is 1."""
    root = collection["root"]
    bad = tmp_path / "bad"
    (bad / "images").mkdir(parents=True)
    for n in collection["names"][:3]:
        (bad / "images" / n).write_bytes((root / "images" / n).read_bytes())
    (bad / "images" / "empty.jpg").write_bytes(b"")
    (bad / "images" / "notes.png").write_text("not an image")
    (bad / "list.txt").write_text("images/img00.jpg\nimages/gone.png\n../outside.png\n")
    with tarfile.open(bad / "00000.tar", "w") as tar:
        tar.add(root / "images" / "img01.png", arcname="ok.png")
        junk = b"\xff\xd8\xff\xe0 not really a jpeg"
        info = tarfile.TarInfo("corrupt.jpg")
        info.size = len(junk)
        tar.addfile(info, io.BytesIO(junk))
    common = ["uniqa-single", "--backbone", str(backbone_file), "--workers", "0", "-q"]
    assert main([*common, "-t", str(bad / "images"), "-o", str(tmp_path / "o1") + "/"]) == 1
    rows = {r[0]: r for r in read_scores(tmp_path / "o1" / "scores.csv")[1:]}
    assert rows["empty.jpg"][1] == "" and "empty.jpg" in rows["empty.jpg"][2]
    assert "not a recognised image format" in rows["notes.png"][2]
    assert sum(1 for r in rows.values() if not r[2]) == 3
    assert main([*common, "-t", str(bad / "list.txt"), "-o", str(tmp_path / "o2") + "/"]) == 1
    rows = {r[0]: r for r in read_scores(tmp_path / "o2" / "scores.csv")[1:]}
    assert "does not exist" in rows["images/gone.png"][2] and "outside the data root" in rows["../outside.png"][2]
    assert rows["images/img00.jpg"][2] == ""
    assert main([*common, "-t", str(bad / "00000.tar"), "-o", str(tmp_path / "o3") + "/"]) == 1
    rows = {Path(r[0]).name: r for r in read_scores(tmp_path / "o3" / "scores.csv")[1:]}
    assert rows["ok.png"][2] == "" and "corrupt.jpg" in rows["corrupt.jpg"][2]
    assert "could not be read" in capsys.readouterr().err


def test_resume_with_other_settings_is_refused_before_scoring(collection, backbone_file, tmp_path, capsys):
    root = collection["root"]
    out = str(tmp_path / "out") + "/"
    common = ["uniqa-single", "-t", str(root / "list.txt"), "--workers", "0", "-q", "-o", out]
    assert main([*common, "--backbone", str(backbone_file)]) == 0
    capsys.readouterr()
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out" / "parts").iterdir()}
    assert main([*common, "--backbone", str(backbone_file)]) == 2  # an earlier run: --resume or elsewhere
    assert "pass --resume" in capsys.readouterr().err
    assert main([*common, "--backbone", str(backbone_file), "--precision", "bf16", "--resume"]) == 2
    assert "precision.uniqa-single: folder 'fp32', this run 'bf16'" in capsys.readouterr().err
    other = write_backbone(tmp_path / "other.pt", seed=3)  # other weights of the same shape
    assert main([*common, "--backbone", str(other), "--resume"]) == 2
    err = capsys.readouterr().err
    assert "weights.uniqa-single" in err and "cannot be resumed" in err
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "out" / "parts").iterdir()} == before
    assert main([*common, "--backbone", str(backbone_file), "--resume"]) == 0  # same settings: nothing to redo
    assert "1 part(s) finished earlier kept" in capsys.readouterr().err


def test_unwritable_output_fails_at_once(collection, backbone_file, tmp_path, capsys):
    """A file where the folder goes (or above it) is refused before any model is built."""
    blocker = tmp_path / "file.csv"
    blocker.write_text("x")
    for out in (f"{blocker}/", f"{blocker}/sub/"):
        tic = time.time()
        assert main(["uniqa-single", "-t", str(collection["root"] / "images"), "--backbone", str(backbone_file),
                     "-q", "-o", out]) == 2
        err = capsys.readouterr().err
        assert "not a writable folder" in err or "is a file" in err
        assert "Created metric" not in err and time.time() - tic < 5


def test_merge_command_and_parquet(collection, backbone_file, tmp_path, capsys):
    root = collection["root"]
    out = tmp_path / "pq"
    assert main(["uniqa-single", "-t", str(root / "table.csv"), "--backbone", str(backbone_file), "-q",
                 "--workers", "0", "--part-rows", "5", "--format", "parquet", "-o", f"{out}/"]) == 0
    import pandas as pd
    merged = pd.read_parquet(out / "scores.parquet")
    assert list(merged.columns) == ["path", "uniqa-single", "error"] and len(merged) == N_IMAGES
    (out / "scores.parquet").unlink()
    assert main(["merge-scores", str(out)]) == 0
    assert pd.read_parquet(out / "scores.parquet").equals(merged)
    (out / "parts" / "part-000001.parquet").unlink()
    assert main(["merge-scores", str(out)]) == 2
    assert "1 of 3 parts are missing (e.g. part-000001.parquet)" in capsys.readouterr().err
