"""Atomic file writes, torch-free: readers (and a resumed job) see the old file or the new one, never
half of one. Used for checkpoints, meta CSVs, split pickles and corpus files alike."""
from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path
from typing import BinaryIO, Callable

from .errors import OutputError


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """Call ``write(f)`` on a temporary file next to ``path``, fsync, then rename it over ``path``.

    The file gets the mode a plain ``open(path, 'w')`` would give: an existing file's own mode, else
    0o666 minus the umask (``mkstemp`` alone would leave 0o600, unreadable to a colleague).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = _open_mode(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


def _open_mode(path: Path) -> int:
    """Permission bits ``open()`` would leave on ``path``: kept if it exists, else 0o666 & ~umask."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return 0o666 & ~current_umask()


def current_umask() -> int:
    """The process umask, read without changing it where Linux shows it (``/proc/self/status``);
    elsewhere set and restored at once (not thread-safe for that instant, as every portable way)."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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
