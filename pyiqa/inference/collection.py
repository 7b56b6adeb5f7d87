"""What ``pyiqa -t TARGET`` scores when the target is a collection: a folder, a list of paths, a table
with a path column, or webdataset-style tar shards; split into numbered units of work.

A unit is the work of one part file (:mod:`pyiqa.inference.score_parts`): ``part_rows`` consecutive
images of a folder, list or table, or one tar shard. Units are numbered in a fixed order, so every
process of a ``torchrun`` job derives the same list and takes its own share (unit ``i`` goes to rank
``i % world_size``), and a resumed run redoes exactly the units without a finished part.

Paths read from a list or a table resolve inside their root (the file's folder, or ``--data-root``):
a row naming a file outside it, like a missing file, becomes an error row, never a read elsewhere. Tar
members are read by offset from the shard (plain, uncompressed tar, as webdataset writes it); files of
other extensions in a shard (``.json``, ``.txt``, ``.cls``) are its metadata and are skipped.
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import os
import re
import stat
import tarfile
from pathlib import Path
from typing import Iterable, List, Optional, Sequence, Tuple

from ..utils.bounded_read import read_bounded
from ..utils.errors import DataError
from .images import IMAGE_EXTENSIONS, list_images

LIST_SUFFIXES = (".txt", ".lst")
TABLE_SUFFIXES = (".csv", ".tsv", ".parquet")
PATH_COLUMNS = ("path", "image", "img_path", "image_path", "file", "filename", "file_name", "url")
#: A list or table of paths: 1M rows of long paths are ~200 MB; a larger file is not a path list.
MAX_LIST_BYTES = 1 << 30
#: One image inside a shard: far above any photo; a larger member is refused as an error row.
MAX_MEMBER_BYTES = 256 << 20
MAX_SHARDS = 1_000_000
_BRACE = re.compile(r"\{([^{}]*)\}")


@dataclasses.dataclass(frozen=True)
class ImageRef:
    """One input row: its ``key`` (what the output names it), where its bytes are, or why it has none.

    ``path`` is the image file, or the shard holding it (then ``offset``/``size`` locate its bytes).
    """

    key: str
    path: str = ""
    offset: int = -1
    size: int = -1
    error: Optional[str] = None

    def read(self) -> bytes:
        """The encoded image (a tar member's bytes); files are decoded from their path instead."""
        if self.size > MAX_MEMBER_BYTES:
            raise DataError(f"Cannot read image '{self.key}': {self.size:,} bytes, more than the "
                            f"{MAX_MEMBER_BYTES >> 20} MiB accepted for one image")
        with open(self.path, "rb") as f:
            f.seek(self.offset)
            data = f.read(self.size)
        if len(data) != self.size:
            raise DataError(f"Cannot read image '{self.key}': the shard ends inside it (truncated)")
        return data


@dataclasses.dataclass(frozen=True)
class Unit:
    """The images of one part file: listed already (``refs``), or a tar ``shard`` listed when scored."""

    index: int
    label: str
    refs: Tuple[ImageRef, ...] = ()
    shard: Optional[str] = None

    def images(self) -> List[ImageRef]:
        return list(self.refs) if self.shard is None else shard_members(self.shard)


@dataclasses.dataclass(frozen=True)
class Collection:
    """The units of a target, the name of the output's first column, and what identifies the inputs
    (for the manifest: resuming with other inputs is refused)."""

    kind: str
    target: str
    units: Tuple[Unit, ...]
    key_column: str
    fingerprint: str
    images: Optional[int]  # None for shards: counted while scoring

    def describe(self) -> dict:
        return {"kind": self.kind, "target": self.target, "units": len(self.units), "images": self.images,
                "fingerprint": self.fingerprint}


def expand_braces(pattern: str) -> List[str]:
    """``shards/{00000..00009}.tar`` -> the ten names (zero padding kept); ``{a,b}`` lists; nested and
    several groups expand left to right, like bash and webdataset."""
    match = _BRACE.search(pattern)
    if match is None:
        return [pattern]
    body, head, tail = match.group(1), pattern[:match.start()], pattern[match.end():]
    numeric = re.fullmatch(r"(\d+)\.\.(\d+)", body)
    if numeric:
        lo, hi = numeric.groups()
        width = len(lo) if lo.startswith("0") or len(lo) == len(hi) else 0
        start, stop = int(lo), int(hi)
        if stop < start:
            raise DataError(f"-t '{pattern}': the range {{{body}}} runs backwards")
        if stop - start >= MAX_SHARDS:
            raise DataError(f"-t '{pattern}': {{{body}}} names more than {MAX_SHARDS:,} shards")
        items = [str(i).zfill(width) for i in range(start, stop + 1)]
    else:
        items = body.split(",")
    return [name for item in items for name in expand_braces(head + item + tail)]


def is_shard_pattern(target: str) -> bool:
    return "{" in target or target.endswith(".tar")


def plan_collection(target: str, recursive: bool = False, part_rows: int = 10_000,
                    path_column: Optional[str] = None, data_root: Optional[str] = None) -> Collection:
    """The units of ``target``; DataError naming it when it holds nothing to score."""
    if is_shard_pattern(target):
        return _shards(target)
    path = Path(target)
    if path.is_dir():
        files = list_images(path, recursive)
        if not files:
            raise DataError(f"No image files in folder '{target}' (looked for the extensions "
                            f"{' '.join(IMAGE_EXTENSIONS[:7])} ...)" + ("." if recursive else
                                                                        "; --recursive also looks in subfolders."))
        refs = [ImageRef(p.relative_to(path).as_posix(), str(p)) for p in files]
        return _chunked("folder", target, refs, part_rows, "path")
    if not path.exists():
        raise DataError(f"Target '{target}' does not exist.")
    suffix = path.suffix.lower()
    if suffix in LIST_SUFFIXES or suffix in TABLE_SUFFIXES:
        root = Path(data_root) if data_root else path.resolve().parent
        names = _list_names(path) if suffix in LIST_SUFFIXES else _table_names(path, path_column)
        if not names:
            raise DataError(f"'{target}' lists no image paths")
        refs = [_inside(name, root) for name in names]
        return _chunked("list" if suffix in LIST_SUFFIXES else "table", target, refs, part_rows, "path")
    return _chunked("file", target, [ImageRef(str(path), str(path))], part_rows, "path")


def _chunked(kind: str, target: str, refs: Sequence[ImageRef], part_rows: int, column: str) -> Collection:
    units = tuple(Unit(i, f"rows {start}-{min(start + part_rows, len(refs)) - 1} of {target}",
                       tuple(refs[start:start + part_rows]))
                  for i, start in enumerate(range(0, len(refs), part_rows)))
    return Collection(kind, target, units, column, _fingerprint(r.key for r in refs), len(refs))


def _fingerprint(keys: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for key in keys:
        digest.update(key.encode("utf-8", "surrogateescape") + b"\n")
    return digest.hexdigest()


def _text(path: Path) -> str:
    data = read_bounded(path, MAX_LIST_BYTES, "list of image paths")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(f"'{path}' is not UTF-8 text (byte {err.start}): give one image path per line") from err


def _check_regular(path: Path) -> None:
    """A regular file within :data:`MAX_LIST_BYTES` (a FIFO or device would never end)."""
    info = path.stat()
    if not stat.S_ISREG(info.st_mode):
        raise DataError(f"'{path}' is not a regular file; give a list or table of image paths")
    if info.st_size > MAX_LIST_BYTES:
        raise DataError(f"'{path}' is {info.st_size:,} bytes; a table of image paths is at most "
                        f"{MAX_LIST_BYTES:,} bytes")


def _list_names(path: Path) -> List[str]:
    """One path per line; blank lines and ``#`` comments skipped."""
    return [line.strip() for line in _text(path).splitlines() if line.strip() and not line.lstrip().startswith("#")]


def _table_names(path: Path, column: Optional[str]) -> List[str]:
    import pandas as pd
    if path.suffix.lower() == ".parquet":
        try:
            import pyarrow  # noqa: F401  (pandas reads Parquet through it)
        except ImportError as err:
            raise DataError(f"'{path}' is Parquet, which needs pyarrow: pip install 'pyiqa-uniqa[parquet]' "
                            "(or pyarrow)") from err
        _check_regular(path)
        table = pd.read_parquet(path)
    else:
        sep = "\t" if path.suffix.lower() == ".tsv" else ","
        table = pd.read_csv(io.StringIO(_text(path)), sep=sep, dtype=str, keep_default_na=False)
    columns = [str(c) for c in table.columns]
    chosen = column if column is not None else next((c for c in PATH_COLUMNS if c in columns), None)
    if chosen is None or chosen not in columns:
        wanted = f"--path-column '{column}'" if column else f"a column named one of {list(PATH_COLUMNS)}"
        raise DataError(f"'{path}' has no {wanted}; its columns: {columns[:20]}. Name the column that holds "
                        "the image paths with --path-column")
    return [str(v).strip() for v in table[chosen].tolist()]


def _inside(name: str, root: Path) -> ImageRef:
    """A listed path as a row: resolved against ``root``, an error row when it leaves it."""
    candidate = Path(name) if os.path.isabs(name) else root / name
    resolved = Path(os.path.normpath(candidate.absolute()))
    root_abs = Path(os.path.normpath(root.absolute()))
    if resolved != root_abs and root_abs not in resolved.parents:
        return ImageRef(name, error=f"'{name}' is outside the data root '{root}' (--data-root names another)")
    return ImageRef(name, str(resolved))


def _shards(target: str) -> Collection:
    shards = expand_braces(target)
    missing = [s for s in shards if not Path(s).is_file()]
    if len(missing) == len(shards):
        raise DataError(f"-t '{target}': none of its {len(shards)} shard(s) exists (e.g. '{shards[0]}')")
    units = tuple(Unit(i, f"shard {s}", shard=s) for i, s in enumerate(shards))
    return Collection("shards", target, units, "key", _fingerprint(shards), None)


def shard_members(shard: str) -> List[ImageRef]:
    """The images of a tar shard in stored order; a missing or unreadable shard, or the part after a
    corrupt header, is one error row (the members before it are kept)."""
    if not Path(shard).is_file():
        return [ImageRef(f"{shard}/", error=f"shard '{shard}' does not exist")]
    refs: List[ImageRef] = []
    try:
        with tarfile.open(shard, mode="r:") as archive:
            for member in archive:
                if member.isfile() and Path(member.name).suffix.lower() in IMAGE_EXTENSIONS:
                    refs.append(ImageRef(f"{shard}/{member.name}", shard, member.offset_data, member.size))
    except (tarfile.TarError, OSError, EOFError) as err:
        after = f"after {refs[-1].key}" if refs else "at its start"
        refs.append(ImageRef(f"{shard}/", error=f"shard '{shard}' cannot be read {after}: {err} (a truncated "
                                                  "or compressed tar? shards are plain .tar files)"))
    return refs
