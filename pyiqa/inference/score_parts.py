"""The output folder of a large scoring run: a manifest, one part file per unit, the merged result.

``OUT/manifest.json`` records what the scores mean (metrics, the sha256 of every weight file, precision,
crop protocol, image size bound, the inputs' fingerprint, rows per part, format); ``OUT/parts/`` holds
``part-<unit>.csv`` (or ``.parquet``), each written atomically once its unit is scored, so a part exists
complete or not at all; ``OUT/scores.csv`` (``.parquet``) is the merge: every part's rows sorted by key.

Resuming (``--resume``) keeps every finished part and redoes the others: a SIGKILL at any moment loses at
most the part in progress on each process, never duplicates or drops a row. A manifest that differs
from the new run's (other weights, precision, crops, inputs) is refused before anything is scored,
naming each difference.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import os
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from ..utils.atomic import atomic_write, write_bytes
from ..utils.bounded_read import read_bounded
from ..utils.errors import DataError, OutputError
from .collection import Collection, ImageRef

MANIFEST_VERSION = 1
#: Recorded for people, not compared: the same inputs may be named from another folder on resume.
INFORMATIONAL = {("inputs", "target")}
FORMATS = ("csv", "parquet")
MAX_MANIFEST_BYTES = 1 << 20
MAX_PART_BYTES = 1 << 30
_hash_cache: Dict[Tuple[str, int, int], str] = {}


def file_sha256(path: str) -> str:
    """``sha256:<hex>`` of a weight file (cached per path, size and modification time)."""
    info = os.stat(path)
    key = (os.path.realpath(path), info.st_size, info.st_mtime_ns)
    if key not in _hash_cache:
        digest = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 22), b""):
                digest.update(block)
        _hash_cache[key] = f"sha256:{digest.hexdigest()}"
    return _hash_cache[key]


@dataclasses.dataclass(frozen=True)
class Manifest:
    """What a folder's scores mean; two runs may share a folder only when these are equal."""

    metrics: List[str]
    weights: Dict[str, Dict[str, str]]
    precision: Dict[str, str]
    crops: Dict[str, Any]
    inputs: Dict[str, Any]
    part_rows: int
    format: str
    version: int = MANIFEST_VERSION

    @classmethod
    def of(cls, metrics: Sequence[Any], collection: Collection, part_rows: int, fmt: str) -> "Manifest":
        """The manifest of scoring ``collection`` with ``metrics`` (InferenceMetric objects)."""
        weights = {m.metric_name: {role: _identity(path) for role, path in sorted(m.weights.items())}
                   for m in metrics}
        crops = {m.metric_name: {**dataclasses.asdict(m.crop_spec), "max_side": m.max_side} for m in metrics}
        return cls([m.metric_name for m in metrics], weights, {m.metric_name: m.precision for m in metrics},
                   crops, collection.describe(), part_rows, fmt)

    def to_json(self) -> bytes:
        return (json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def read(cls, path: Path) -> "Manifest":
        try:
            data = json.loads(read_bounded(path, MAX_MANIFEST_BYTES, "scoring manifest"))
            return cls(**data)
        except (ValueError, TypeError) as err:
            raise DataError(f"{path} is not a scoring manifest of this version ({err}); score into another "
                            "folder") from err

    def differences(self, other: "Manifest") -> List[str]:
        """``key: here X, there Y`` for every field that differs (nested one level)."""
        diffs = []
        for field in dataclasses.fields(self):
            mine, theirs = getattr(self, field.name), getattr(other, field.name)
            if mine == theirs:
                continue
            if isinstance(mine, dict) and isinstance(theirs, dict):
                for key in sorted(set(mine) | set(theirs), key=str):
                    if (field.name, key) in INFORMATIONAL:
                        continue
                    if mine.get(key) != theirs.get(key):
                        diffs.append(f"{field.name}.{key}: folder {mine.get(key)!r}, this run {theirs.get(key)!r}")
            else:
                diffs.append(f"{field.name}: folder {mine!r}, this run {theirs!r}")
        return diffs


def _identity(path: Any) -> Optional[str]:
    """A weight file by its content; a built-in backbone ('random-tiny') or no file by its name."""
    if path is None:
        return None
    return file_sha256(str(path)) if Path(str(path)).is_file() else str(path)


class ScoreFolder:
    """``OUT/``: claim it for a manifest, write and find parts, merge them."""

    def __init__(self, root: Path, fmt: str = "csv"):
        if fmt not in FORMATS:
            raise DataError(f"--format must be one of {list(FORMATS)}, got {fmt!r}")
        self.root, self.format = Path(root), fmt
        self.manifest_path = self.root / "manifest.json"
        self.parts = self.root / "parts"
        self.merged = self.root / f"scores.{fmt}"

    # ------------------------------------------------------------------------------ set-up
    def check_writable(self) -> None:
        """Refuse a file where the folder goes, or a folder in which nothing can be created (checked
        before a model is built)."""
        if self.root.exists() and not self.root.is_dir():
            raise OutputError(f"-o '{self.root}' is a file; give a folder for the part files")
        probe = self.root
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
            raise OutputError(f"-o '{self.root}': cannot create files in '{probe}' (not a writable folder); "
                              "give a folder you can write")
        if self.parts.exists() and not os.access(self.parts, os.W_OK | os.X_OK):
            raise OutputError(f"-o '{self.root}': its parts folder '{self.parts}' is not writable")

    def check(self, manifest: Manifest, resume: bool) -> None:
        """Refuse a folder holding another run's scores (or this run's without ``resume``), or one that
        cannot be written. Changes nothing, so every process can call it."""
        self.check_writable()
        if self.manifest_path.exists():
            old = Manifest.read(self.manifest_path)
            diffs = old.differences(manifest)
            if diffs:
                raise OutputError(f"-o '{self.root}' holds scores made with other settings ({'; '.join(diffs[:4])}"
                                  f"{'; ...' if len(diffs) > 4 else ''}); they cannot be resumed: score into "
                                  "another folder")
            if not resume:
                raise OutputError(f"-o '{self.root}' holds the parts of an earlier run of these settings; pass "
                                  "--resume to continue it, or give another folder")

    def claim(self, manifest: Manifest) -> None:
        """Create the folder and write the manifest (one process, rank 0, while the others wait); drop the
        temporary files a killed run left behind (its unfinished parts)."""
        try:
            self.parts.mkdir(parents=True, exist_ok=True)
            if not self.manifest_path.exists():
                write_bytes(self.manifest_path, manifest.to_json())
            for leftover in self.parts.glob(".part-*.tmp"):
                leftover.unlink()
        except OSError as err:
            raise OutputError(f"-o '{self.root}': cannot write there ({err.strerror or err})") from err

    # ------------------------------------------------------------------------------ parts
    def part_path(self, index: int) -> Path:
        return self.parts / f"part-{index:06d}.{self.format}"

    def finished(self, index: int) -> bool:
        return self.part_path(index).is_file()

    def write_part(self, index: int, key_column: str, metrics: Sequence[str],
                   rows: Iterable[Tuple[ImageRef, Optional[List[float]], Optional[str]]]) -> int:
        """Write one unit's rows atomically; returns how many could not be read."""
        columns = [key_column, *metrics, "error"]
        records = [[ref.key, *(row if row is not None else [None] * len(metrics)), reason or ""]
                   for ref, row, reason in rows]
        _write_table(self.part_path(index), columns, records, self.format)
        return sum(1 for r in records if r[-1])

    # ------------------------------------------------------------------------------ merge
    def merge(self, units: int) -> Tuple[Path, int, int]:
        """Every part's rows, sorted by key, into ``scores.<format>``; returns (path, rows, error rows).

        Raises:
            DataError: parts are missing (a process died: rerun with ``--resume``), or a part is unreadable.
        """
        missing = [i for i in range(units) if not self.finished(i)]
        if missing:
            raise DataError(f"{self.root}: {len(missing)} of {units} parts are missing (e.g. "
                            f"{self.part_path(missing[0]).name}); rerun the same command with --resume to score "
                            "them, then merge")
        columns: Optional[List[str]] = None
        records: List[List[Any]] = []
        for i in range(units):
            cols, rows = _read_table(self.part_path(i), self.format)
            if columns is not None and cols != columns:
                raise DataError(f"{self.part_path(i)} has columns {cols}, the other parts {columns}")
            columns = cols
            records.extend(rows)
        records.sort(key=lambda r: str(r[0]))
        _write_table(self.merged, columns or [], records, self.format)
        return self.merged, len(records), sum(1 for r in records if r[-1])


def _write_table(path: Path, columns: List[str], records: List[List[Any]], fmt: str) -> None:
    try:
        if fmt == "csv":
            def write(f: Any) -> None:
                text = io.TextIOWrapper(f, encoding="utf-8", newline="")
                out = csv.writer(text)
                out.writerow(columns)
                for r in records:
                    out.writerow([r[0], *("" if v is None else f"{v:.6f}" for v in r[1:-1]), r[-1]])
                text.flush()
                text.detach()
            atomic_write(path, write)
        else:
            import pandas as pd
            frame = pd.DataFrame(records, columns=columns)
            atomic_write(path, lambda f: frame.to_parquet(f, index=False))
    except OSError as err:
        raise OutputError(f"Cannot write {path}: {err.strerror or err}") from err


def _read_table(path: Path, fmt: str) -> Tuple[List[str], List[List[Any]]]:
    if fmt == "csv":
        text = read_bounded(path, MAX_PART_BYTES, "part file").decode("utf-8")
        rows = list(csv.reader(io.StringIO(text, newline="")))
        if not rows:
            raise DataError(f"{path} is empty: delete it and rerun with --resume")
        columns, body = rows[0], rows[1:]
        return columns, [[r[0], *(float(v) if v else None for v in r[1:-1]), r[-1]] for r in body]
    import pandas as pd
    frame = pd.read_parquet(path)
    return [str(c) for c in frame.columns], frame.astype(object).where(frame.notna(), None).values.tolist()


def parquet_available() -> bool:
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        return False
    return True
