"""Atomic file writes, torch-free: readers (and a resumed job) see the old file or the new one, never
half of one. Used for checkpoints, meta CSVs, split pickles and corpus files alike."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

from .errors import OutputError


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(f)`` on a temporary file next to ``path``, fsync, then rename it over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def write_bytes(path: str | Path, data: bytes) -> None:
    """:func:`atomic_write` of ``data``; OutputError naming the file when it cannot be written."""
    try:
        atomic_write(path, lambda f: f.write(data))
    except OSError as exc:
        raise OutputError(f"cannot write '{path}': {exc}") from exc


def write_if_changed(path: str | Path, data: bytes) -> bool:
    """:func:`write_bytes` unless ``path`` already holds exactly ``data`` (re-runs touch nothing);
    True when it wrote."""
    path = Path(path)
    if path.is_file() and path.read_bytes() == data:
        return False
    write_bytes(path, data)
    return True
