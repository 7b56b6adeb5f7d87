"""The feature cache trusts no file it did not just check: an image whose content changed behind an
unchanged size and modification time, a shard index whose rows were permuted, an object-array or
misshapen ``.npy``, shards of the previous format, a read-only or blocked cache folder and special files
are each detected (rebuilt with a warning, or one DataError), never misread and never a traceback."""
from __future__ import annotations

import io
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, PngImagePlugin

import pyiqa.data.feature_cache as fc
from pyiqa.archs.uniqa_arch import UniQA
from pyiqa.data.builder import build_dataset
from pyiqa.data.feature_cache import FeatureCache
from pyiqa.data.feature_shards import SHARD_FORMAT, _file_sha256, image_fingerprint, shard_checksum
from pyiqa.utils.errors import DataError

from helpers import REPO

ROWS = 8  # rows per shard here: the 26 test images make 4 shards


def _dataset(root: Path, name: str = "demo"):
    opt = {"type": "GeneralNRDataset", "name": name, "dataroot_target": str(root),
           "meta_info_file": str(root / "meta_info_demo.csv"), "split_file": str(root / "demo_split.pkl"),
           "split_index": 1, "mos_range": [0, 100], "mos_normalize": True}
    return build_dataset(opt, "test", where="datasets.test")


@pytest.fixture(scope="module")
def built(demo_data, tiny_backbone, tmp_path_factory):
    """A copy of the demo data (tests change its images) and its centre-crop cache, built once."""
    base = tmp_path_factory.mktemp("trust")
    root = Path(shutil.copytree(demo_data["root"], base / "demo"))
    torch.manual_seed(0)
    net = UniQA(backbone=str(tiny_backbone), embedding_dim=32, test_crop="center")
    ds = _dataset(root)
    saved, fc.SHARD_ROWS = fc.SHARD_ROWS, ROWS
    try:
        table = FeatureCache(base / "cache", net, torch.device("cpu")).prepare(ds, "crops", progress=False)
    finally:
        fc.SHARD_ROWS = saved
    reference = {r: np.array(table.get(r)) for r in ds.rows}
    return {"base": base, "root": root, "net": net, "ds": ds, "reference": reference,
            "folder_name": table.folder.name}


@pytest.fixture
def cache(built, tmp_path, monkeypatch):
    """A fresh copy of the built cache; ``open()`` prepares it again and returns the table."""
    monkeypatch.setattr(fc, "SHARD_ROWS", ROWS)
    root = Path(shutil.copytree(built["base"] / "cache", tmp_path / "cache"))
    folder = root / built["folder_name"]

    def prepare(ds=None):
        return FeatureCache(root, built["net"], torch.device("cpu")).prepare(ds or built["ds"], "crops",
                                                                              progress=False)
    return {"root": root, "folder": folder, "prepare": prepare, "shards": sorted(folder.glob("shard-*.json"))}


def _same_as_reference(table, built):
    for row, expected in built["reference"].items():
        np.testing.assert_array_equal(table.get(row), expected)


def _forge(meta: Path, **changes) -> None:
    """Rewrite a shard's .json with ``changes`` and a valid checksum (as a careful hand would)."""
    info = {**json.loads(meta.read_text()), **changes}
    info["checksum"] = shard_checksum(info)
    meta.write_text(json.dumps(info))


def _same_size_new_pixels(path: Path) -> None:
    """Another PNG of exactly the same byte size (a text chunk pads it) and the same mtime."""
    st, original = path.stat(), path.read_bytes()
    img = Image.open(io.BytesIO(original)).convert("RGB")
    img.putpixel((0, 0), tuple(255 - c for c in img.getpixel((0, 0))))
    for level in (6, 9):
        buf = io.BytesIO()
        img.save(buf, format="PNG", compress_level=level)
        spare = len(original) - len(buf.getvalue()) - 14   # chunk header, CRC, key 'k' and its NUL
        if spare >= 0:
            info = PngImagePlugin.PngInfo()
            info.add_text("k", "x" * spare)
            buf = io.BytesIO()
            img.save(buf, format="PNG", compress_level=level, pnginfo=info)
            break
    data = buf.getvalue()
    assert len(data) == len(original) and data != original
    path.write_bytes(data)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_image_changed_behind_same_size_and_mtime_is_rebuilt(built, cache, caplog):
    """Before: the shard was reused with the old image's features, silently."""
    row = json.loads(cache["shards"][0].read_text())["rows"][0]
    image = built["ds"].image_path(row)
    original, st = image.read_bytes(), image.stat()
    try:
        _same_size_new_pixels(image)
        assert (image.stat().st_size, image.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
        with caplog.at_level(logging.WARNING):
            cache["prepare"]()
        assert f"image '{image}' changed since the shard was built" in caplog.text
        assert caplog.text.count("deleted and rebuilt") == 1
        info = json.loads(cache["shards"][0].read_text())
        assert info["images"][info["rows"].index(row)] == image_fingerprint(image)
    finally:
        image.write_bytes(original)
        os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_fingerprint_reads_both_ends_of_the_file(tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(bytes(300_000))
    base = image_fingerprint(big)
    for offset in (10, 300_000 - 10):                   # first and last 64 KiB
        data = bytearray(bytes(300_000))
        data[offset] = 1
        big.write_bytes(bytes(data))
        os.utime(big, ns=(0, base[1]))
        assert image_fingerprint(big)[2] != base[2]
    with pytest.raises(DataError, match="not a regular file"):
        image_fingerprint(Path("/dev/zero"))


@pytest.mark.parametrize("forged", [False, True])
def test_permuted_rows_are_never_read_as_other_images(built, cache, caplog, forged):
    """Before: permuting a shard's 'rows' (the SHA-256 covered only the .npy) served each row another
    image's features. Now the checksum covers the rows, and rows must match the shard's file name."""
    meta = cache["shards"][1]
    info = json.loads(meta.read_text())
    rows = info["rows"][::-1]
    if forged:
        _forge(meta, rows=rows, images=info["images"][::-1])
        why = "its rows do not match its file name"
    else:
        meta.write_text(json.dumps({**info, "rows": rows}))
        why = "does not match its checksum"
    with caplog.at_level(logging.WARNING):
        table = cache["prepare"]()
    assert why in caplog.text and caplog.text.count("deleted and rebuilt") == 1
    _same_as_reference(table, built)


def test_object_array_npy_is_rebuilt_without_unpickling(built, cache, caplog, tmp_path):
    """Before: ValueError traceback from np.load (with a forged index). Now: rebuilt, nothing unpickled."""
    meta = cache["shards"][2]
    npy = meta.with_suffix(".npy")
    marker = tmp_path / "code-ran"
    payload = np.empty(1, dtype=object)
    payload[0] = _Planted(str(marker))
    np.save(npy, payload, allow_pickle=True)
    _forge(meta, npy_sha256=_file_sha256(npy))
    with caplog.at_level(logging.WARNING):
        table = cache["prepare"]()
    assert "its .npy file cannot be loaded" in caplog.text and not marker.exists()
    _same_as_reference(table, built)


class _Planted:
    """Unpickling this creates a marker file."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.mark.parametrize("what", ["array", "index"])
def test_shard_of_the_wrong_shape_is_rebuilt(built, cache, caplog, what):
    """Before: an IndexError/ValueError traceback at training time (the index's shape was trusted)."""
    meta = cache["shards"][3]
    npy = meta.with_suffix(".npy")
    info = json.loads(meta.read_text())
    n, k, d = info["shape"]
    if what == "array":
        np.save(npy, np.zeros((n, k, d + 3), np.float16))
        _forge(meta, npy_sha256=_file_sha256(npy))
        why = f"not float16 [{n}, {k}, {d}]"
    else:
        np.save(npy, np.zeros((n, k + 1, d), np.float16))
        _forge(meta, npy_sha256=_file_sha256(npy), shape=[n, k + 1, d])
        why = f"{[n, k, d]} float16 expected"
    with caplog.at_level(logging.WARNING):
        table = cache["prepare"]()
    assert why in caplog.text and caplog.text.count("deleted and rebuilt") == 1
    _same_as_reference(table, built)


def test_shards_of_the_previous_format_are_rebuilt_with_one_warning(built, cache, caplog):
    """The previous version's shards (rows, shape, the .npy's SHA-256, size and mtime per image) are not
    read: one warning, then rebuilt, and the result equals a fresh build."""
    for meta in cache["shards"]:
        info = json.loads(meta.read_text())
        old = {"rows": info["rows"], "shape": info["shape"], "sha256": info["npy_sha256"],
               "stats": [image[:2] for image in info["images"]]}
        meta.write_text(json.dumps(old))
    with caplog.at_level(logging.WARNING):
        table = cache["prepare"]()
    assert caplog.text.count("written in an older format") == 1 and "4 shard(s)" in caplog.text
    assert all(json.loads(m.read_text())["format"] == SHARD_FORMAT for m in cache["shards"])
    _same_as_reference(table, built)


def test_special_files_in_the_cache_never_hang(built, cache, caplog):
    """A shard index grown to 9 MiB, spec.json a link to /dev/zero, a FIFO in place of a .npy."""
    with open(cache["shards"][0], "r+b") as f:
        f.truncate(9 << 20)
    npy = cache["shards"][1].with_suffix(".npy")
    npy.unlink()
    os.mkfifo(npy)
    (cache["folder"] / "spec.json").unlink()
    (cache["folder"] / "spec.json").symlink_to("/dev/zero")
    with caplog.at_level(logging.WARNING):
        table = cache["prepare"]()
    assert "larger than the 8 MiB cap" in caplog.text and "not a regular file" in caplog.text
    _same_as_reference(table, built)


def test_cache_path_that_is_a_file_is_one_error(built, tmp_path):
    """Before: FileExistsError / NotADirectoryError traceback."""
    blocker = tmp_path / "cache"
    blocker.write_text("not a folder")
    with pytest.raises(DataError, match=r"cache"):
        FeatureCache(blocker, built["net"], torch.device("cpu")).prepare(built["ds"], "crops", progress=False)
    with pytest.raises(DataError, match="cannot be created"):
        FeatureCache(blocker / "sub", built["net"], torch.device("cpu")).prepare(built["ds"], "crops",
                                                                                 progress=False)


def test_dataset_name_cannot_lead_the_cache_out_of_its_root(built, cache):
    ds = _dataset(built["root"], name="../../escaped")
    table = cache["prepare"](ds)
    assert table.folder.parent == cache["root"] and table.folder.name.startswith(".._.._escaped_crops_")


READ_ONLY = """
import logging, sys, torch
from pathlib import Path
import pyiqa.data.feature_cache as fc
from pyiqa.archs.uniqa_arch import UniQA
from pyiqa.data.builder import build_dataset
from pyiqa.data.feature_cache import FeatureCache
from pyiqa.utils.errors import DataError
logging.basicConfig(stream=sys.stdout, level=logging.INFO)
fc.SHARD_ROWS = 8
root, backbone, cache = sys.argv[1:4]
opt = {"type": "GeneralNRDataset", "name": "demo", "dataroot_target": root,
       "meta_info_file": root + "/meta_info_demo.csv", "split_file": root + "/demo_split.pkl",
       "split_index": 1, "mos_range": [0, 100], "mos_normalize": True}
torch.manual_seed(0)
net = UniQA(backbone=backbone, embedding_dim=32, test_crop="center")
ds = build_dataset(opt, "test", where="t")
for attempt in ("complete", "one shard missing"):
    if attempt == "one shard missing":  # the owner may chmod: open the folder, drop a shard, close it
        folder = next(Path(cache).glob("demo_crops_*"))
        folder.chmod(0o755)
        sorted(folder.glob("shard-*.npy"))[0].unlink()
        folder.chmod(0o555)
    try:
        table = FeatureCache(cache, net, torch.device("cpu")).prepare(ds, "crops", progress=False)
        print("READ", len(table.index))
    except DataError as err:
        print("ERROR", err)
"""


def test_read_only_cache_is_read_and_a_missing_shard_is_one_error(built, tiny_backbone, cache):
    """A read-only cache folder serves a complete cache; with a shard missing it is one DataError naming
    the folder, before any build (before: PermissionError traceback). Root writes anywhere, so as root
    the process runs without CAP_DAC_OVERRIDE (setpriv), where folder modes bind it as anyone else."""
    prefix = []
    if os.geteuid() == 0:
        if not shutil.which("setpriv"):
            pytest.skip("running as root without setpriv: a read-only folder cannot be made")
        drop = "-dac_override,-dac_read_search"
        prefix = ["setpriv", f"--inh-caps={drop}", f"--bounding-set={drop}", "--"]
    script = cache["root"].parent / "ro.py"
    script.write_text(READ_ONLY)
    folder = cache["folder"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    try:
        folder.chmod(0o555)
        out = subprocess.run([*prefix, sys.executable, str(script), str(built["root"]), str(tiny_backbone),
                              str(cache["root"])], env=env, capture_output=True, text=True, timeout=120)
    finally:
        folder.chmod(0o755)
    log = out.stdout
    assert out.returncode == 0 and "Traceback" not in out.stderr, log + out.stderr
    first, second = log.split("READ 26\n")                          # complete: read as it is
    assert "cannot delete" not in first and "building" not in log
    assert f"ERROR Feature cache folder '{folder}' cannot be written" in second
    assert "8 of 26 images' embeddings are missing" in second and len(list(folder.glob("shard-*.npy"))) == 3
