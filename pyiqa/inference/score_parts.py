"""The output folder of a large scoring run: a manifest, one part file per unit, the merged result.

``OUT/manifest.json`` records what the scores mean (metrics, the sha256 of every weight file, precision,
crop protocol, image size bound, the inputs' fingerprint, rows per part, format); ``OUT/parts/`` holds
``part-<unit>.csv`` (or ``.parquet``), each written atomically once its unit is scored, so a part exists
complete or not at all, its rows sorted by key; ``OUT/scores.csv`` (``.parquet``) is the merge: every
part's rows sorted by key, streamed through a k-way merge (memory and open files stay bounded however
many rows and parts there are; many parts merge in passes through temporary runs).

Resuming (``--resume``) keeps every finished part and redoes the others: a SIGKILL at any moment loses at
most the part in progress on each process, never duplicates or drops a row. A manifest that differs
from the new run's (other weights, precision, crops, inputs) is refused before anything is scored,
naming each difference.
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterable, List, Optional, Sequence, Tuple

from ..utils.atomic import write_bytes
from ..utils.bounded_read import read_bounded
from ..utils.errors import DataError, OutputError
from .part_tables import (MERGED_GROUP_ROWS, Row, TableSource, UnsortedPart, common_columns, merge_into, row_key,
                          run_suffix, sorted_part, write_table)

if TYPE_CHECKING:  # hints only: `pyiqa merge-scores` then needs no torch (collection imports the readers)
    from .collection import Collection, ImageRef

MANIFEST_VERSION = 1
#: Recorded for people, not compared: the same inputs may be named from another folder on resume.
INFORMATIONAL = {("inputs", "target")}
FORMATS = ("csv", "parquet")
MAX_MANIFEST_BYTES = 1 << 20
#: The most files one merge pass reads at once; more parts are merged in passes through temporary runs.
MERGE_FAN_IN = 128
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
        """Write one unit's rows atomically, sorted by key (the merge streams sorted parts); returns how
        many could not be read."""
        columns = [key_column, *metrics, "error"]
        empty = [None] * len(metrics)
        if self.format == "csv":
            records: List[Row] = [[ref.key, *("" if v is None else f"{v:.6f}" for v in
                                              (row if row is not None else empty)), reason or ""]
                                  for ref, row, reason in rows]
        else:
            records = [[ref.key, *(row if row is not None else empty), reason or ""] for ref, row, reason in rows]
        records.sort(key=row_key)
        return write_table(self.part_path(index), columns, records, self.format)[1]

    # ------------------------------------------------------------------------------ merge
    def merge(self, units: int, fan_in: Optional[int] = None) -> Tuple[Path, int, int]:
        """Every part's rows, sorted by key, into ``scores.<format>``; returns (path, rows, error rows).

        A k-way merge streams the sorted parts into the merged file, so memory does not grow with the
        rows; more than ``fan_in`` (default :data:`MERGE_FAN_IN`) parts are merged in passes through
        temporary runs in ``parts/.merge-*.tmp/``, removed afterwards. Equal keys keep part order.

        Raises:
            DataError: parts are missing (a process died: rerun with ``--resume``), or a part is unreadable.
            OutputError: the merged file or a temporary run cannot be written.
        """
        missing = [i for i in range(units) if not self.finished(i)]
        if missing:
            raise DataError(f"{self.root}: {len(missing)} of {units} parts are missing (e.g. "
                            f"{self.part_path(missing[0]).name}); rerun the same command with --resume to score "
                            "them, then merge")
        parts = [self.part_path(i) for i in range(units)]
        columns = common_columns(parts, self.format)
        fan_in = max(2, fan_in or MERGE_FAN_IN)
        for leftover in self.parts.glob(".merge-*.tmp"):  # runs of a merge that was killed
            shutil.rmtree(leftover, ignore_errors=True)
        try:
            tmp = Path(tempfile.mkdtemp(prefix=".merge-", suffix=".tmp", dir=self.parts))
        except OSError as err:
            raise OutputError(f"Cannot write in {self.parts}: {err.strerror or err}") from err
        try:
            try:
                sources = [TableSource(p) for p in parts]
                return self._merge_sources(sources, columns, tmp, fan_in)
            except UnsortedPart:  # parts written by a version that did not sort them: sort each one first
                for run in tmp.iterdir():
                    run.unlink()
                sources = [sorted_part(p, columns, self.format, tmp) for p in parts]
                return self._merge_sources(sources, columns, tmp, fan_in)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def _merge_sources(self, sources: List["TableSource"], columns: List[str], tmp: Path,
                       fan_in: int) -> Tuple[Path, int, int]:
        """Merge runs of consecutive sources until ``fan_in`` remain (runs replace their sources in place,
        so ties keep part order; only as many as needed, so fewer rows are written twice), then the rest
        into the merged file."""
        runs = 0
        while len(sources) > fan_in:
            excess, merged, i = len(sources) - fan_in, [], 0
            while i < len(sources):
                take = min(fan_in, excess + 1, len(sources) - i)
                if take == 1:
                    merged.append(sources[i])
                else:
                    runs += 1
                    run = tmp / f"run-{runs:06d}.{run_suffix(self.format)}"
                    merge_into(run, sources[i:i + take], columns, self.format, run=True)
                    for done in sources[i:i + take]:
                        if done.path.parent == tmp:
                            done.path.unlink()
                    merged.append(TableSource(run, part=False))
                    excess -= take - 1
                i += take
            sources = merged
        _, rows, errors = merge_into(self.merged, sources, columns, self.format, MERGED_GROUP_ROWS)
        return self.merged, rows, errors


def parquet_available() -> bool:
    try:
        import pyarrow  # noqa: F401  (only whether it imports)
    except ImportError:
        return False
    return True
