"""The shard files of one feature-cache folder, and the checks that decide whether to trust them.

A shard is ``shard-<id>.npy`` (float16 ``(rows, K, D)``) and its ``shard-<id>.json``: the shard format,
the cache key, the rows (``<id>`` is their hash), the array's shape and dtype, each image's identity
(:func:`image_fingerprint`) and the ``.npy``'s SHA-256, all covered by one checksum. Anything that does
not check out is logged, deleted and rebuilt by :class:`~pyiqa.data.feature_cache.FeatureCache`; see
that module for what a cache holds and when it is built.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy as np

from ..utils.atomic import atomic_write, write_bytes
from ..utils.bounded_read import MiB, read_bounded
from ..utils.errors import DataError, OutputError

if TYPE_CHECKING:
    from .feature_cache import CacheSpec

logger = logging.getLogger(__name__)

SHARD_FORMAT = 2               # the .json's layout; 1 (no content hashes, no checksum) is rebuilt
SHARD_JSON_LIMIT = 8 * MiB     # a shard's .json: ~100 bytes per row
FINGERPRINT_BYTES = 64 * 1024  # image_fingerprint reads this much at each end of the file


def shard_id(rows: Sequence[int]) -> str:
    """The name of the shard holding ``rows`` (in order)."""
    return hashlib.sha256(",".join(map(str, rows)).encode()).hexdigest()[:16]


def image_fingerprint(path: Path) -> List[Any]:
    """``[size, mtime_ns, content hash]`` of an image file; the hash is the SHA-256 (first 32 hex digits)
    of the size and the first and last :data:`FINGERPRINT_BYTES` of the file (all of a small file).

    Raises:
        OSError: the file cannot be read; DataError: it is not a regular file.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise DataError(f"image '{path}' is not a regular file")
        h = hashlib.sha256(f"{st.st_size}|".encode())
        h.update(os.pread(fd, FINGERPRINT_BYTES, 0))
        if st.st_size > FINGERPRINT_BYTES:  # the last 64 KiB, never the first ones twice
            start = max(FINGERPRINT_BYTES, st.st_size - FINGERPRINT_BYTES)
            h.update(os.pread(fd, st.st_size - start, start))
        return [int(st.st_size), int(st.st_mtime_ns), h.hexdigest()[:32]]
    finally:
        os.close(fd)


def shard_checksum(info: Dict[str, Any]) -> str:
    """SHA-256 of everything in a shard's .json but the checksum itself (canonical JSON)."""
    body = {k: v for k, v in info.items() if k != "checksum"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


class FeatureTable:
    """The shards of one cache folder: which rows they hold, and their embeddings (memory-mapped).

    Args:
        folder: the cache folder (``<cache root>/<dataset>_<kind>_<key>``).
        spec: what the embeddings depend on (written to ``spec.json`` for people; the folder name is
            its key).
        image_path: row -> image file, for the per-row size/modification-time check.
    """

    def __init__(self, folder: Path, spec: CacheSpec, image_path: Callable[[int], Path]):
        self.folder, self.spec, self.image_path = Path(folder), spec, image_path
        self.index: Dict[int, Tuple[str, int]] = {}   # row -> (shard id, position in it)
        self.shards: Dict[str, np.ndarray] = {}        # shard id -> memory-mapped (n, K, D)

    # ------------------------------------------------------------------------------------ reading
    def shard_files(self) -> Iterator[Tuple[str, Path, Path]]:
        for meta in sorted(self.folder.glob("shard-*.json")):
            yield meta.stem[len("shard-"):], meta.with_suffix(".npy"), meta

    def open(self, rows: Sequence[int], delete_bad: bool) -> List[int]:
        """Index every valid shard holding one of ``rows``; returns the rows of ``rows`` still missing.

        A shard is valid when its ``.json`` is of this :data:`SHARD_FORMAT`, passes its checksum, names
        this cache's key and rows that match the file name, its ``.npy`` has the recorded SHA-256 and
        holds a float16 array of the recorded shape, and every image it holds still has the recorded
        size, modification time and content hash. An invalid shard is logged (and deleted when
        ``delete_bad``: one process deletes, the others only skip it); shards of an older format are
        summed up in one warning.
        """
        wanted = set(rows)
        self.index, self.shards = {}, {}
        old: List[str] = []
        for number, npy, meta in self.shard_files():
            try:
                info = json.loads(read_bounded(meta, SHARD_JSON_LIMIT, "shard index").decode("utf-8"))
            except (DataError, ValueError, RecursionError) as err:
                self._bad(number, npy, meta, f"unreadable index ({err})", delete_bad)
                continue
            if not isinstance(info, dict) or info.get("format") != SHARD_FORMAT:
                old.append(number)
                self._bad(number, npy, meta, "", delete_bad, quiet=True)
                continue
            shard_rows = info.get("rows")
            if not isinstance(shard_rows, list):
                self._bad(number, npy, meta, "its index has no list of rows", delete_bad)
                continue
            if not wanted.intersection(r for r in shard_rows if isinstance(r, int)):
                continue
            reason = self._check_index(number, info) or self._check_shard(npy, info, shard_rows)
            array = None
            if not reason:
                array, reason = self._load(npy, info["shape"])
            if reason:
                self._bad(number, npy, meta, reason, delete_bad)
                continue
            self.shards[number] = array
            for pos, row in enumerate(shard_rows):
                self.index[row] = (number, pos)
        if old:
            logger.warning("Feature cache %s: %d shard(s) written in an older format (before content hashes "
                           "and a checksum over the rows); they are %s", self.folder, len(old),
                           "deleted and rebuilt" if delete_bad else "skipped")
        return [r for r in sorted(wanted) if r not in self.index]

    def _check_index(self, number: str, info: Dict[str, Any]) -> str:
        """Why a shard's .json cannot be trusted (checksum, cache key, rows against the file name)."""
        if info.get("checksum") != shard_checksum(info):
            return "its .json does not match its checksum (edited or damaged)"
        if info.get("cache") != self.spec.key:
            return f"it belongs to cache {info.get('cache')!r}, not {self.spec.key!r} (copied from another folder?)"
        rows, total = info.get("rows"), int(self.spec.dataset.get("rows", 0))
        if not rows or not all(isinstance(r, int) and not isinstance(r, bool) and 0 <= r < total for r in rows) \
                or len(set(rows)) != len(rows):
            return f"its rows are not distinct row numbers below {total}"
        if shard_id(rows) != number:
            return "its rows do not match its file name (reordered?)"
        if not isinstance(info.get("images"), list) or len(info["images"]) != len(rows):
            return "it records no image identity for some rows"
        return ""

    def _check_shard(self, npy: Path, info: Dict[str, Any], rows: List[int]) -> str:
        shape = [len(rows), self.spec.per_image, self.spec.dim]
        if not npy.is_file():
            return "its .npy file is missing (or not a regular file)"
        if info.get("shape") != shape or info.get("dtype") != "float16":
            return f"shape {info.get('shape')} {info.get('dtype')} recorded, {shape} float16 expected"
        if npy.stat().st_size > 2 * int(np.prod(shape)) + MiB:
            return "its .npy file is larger than its shape needs"
        if _file_sha256(npy) != info.get("npy_sha256"):
            return "its .npy file does not match the recorded SHA-256 (corrupted or truncated)"
        for row, recorded in zip(rows, info["images"]):
            path = self.image_path(row)
            try:
                if image_fingerprint(path) != recorded:
                    return f"image '{path}' changed since the shard was built"
            except (OSError, DataError):
                return f"image '{path}' is gone or unreadable"
        return ""

    @staticmethod
    def _load(npy: Path, shape: List[int]) -> Tuple[Optional[np.ndarray], str]:
        """The memory-mapped array, or why it is not the float16 array of ``shape`` the index promised."""
        try:
            array = np.load(npy, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError, EOFError) as err:
            return None, f"its .npy file cannot be loaded ({err})"
        if not isinstance(array, np.ndarray) or array.dtype != np.float16 or list(array.shape) != shape:
            return None, (f"its .npy holds {getattr(array, 'dtype', type(array).__name__)} "
                          f"{list(getattr(array, 'shape', ()))}, not float16 {shape}")
        return array, ""

    def _bad(self, number: str, npy: Path, meta: Path, reason: str, delete: bool, quiet: bool = False) -> None:
        if not quiet:
            logger.warning("Feature cache %s: shard %s is invalid (%s); it is %s", self.folder, number, reason,
                           "deleted and rebuilt" if delete else "skipped")
        if delete:
            for path in (meta, npy):
                try:
                    path.unlink(missing_ok=True)
                except OSError as err:  # a read-only cache: the shard is skipped, prepare() says more
                    logger.warning("Feature cache %s: cannot delete '%s' (%s)", self.folder, path,
                                   err.strerror or err)

    def get(self, row: int) -> np.ndarray:
        """(K, D) float16 embeddings of ``row`` (a view into the memory-mapped shard)."""
        number, pos = self.index[row]
        return self.shards[number][pos]

    # ------------------------------------------------------------------------------------ writing
    def write_shard(self, rows: List[int], feats: np.ndarray) -> None:
        """Atomically write ``shard-<id>.npy``, then its ``.json`` (only a shard with both counts). The id
        is a hash of the rows, so every process names a shard alike whatever it saw of the folder."""
        npy = self.folder / f"shard-{shard_id(rows)}.npy"
        try:
            atomic_write(npy, lambda f: np.save(f, feats.astype(np.float16), allow_pickle=False))
        except OSError as err:
            raise OutputError(f"Feature cache: cannot write '{npy}' ({err.strerror or err})") from err
        info = {"format": SHARD_FORMAT, "cache": self.spec.key, "rows": [int(r) for r in rows],
                "shape": list(feats.shape), "dtype": "float16", "npy_sha256": _file_sha256(npy),
                "images": [image_fingerprint(self.image_path(r)) for r in rows]}
        info["checksum"] = shard_checksum(info)
        write_bytes(npy.with_suffix(".json"), json.dumps(info).encode())
