"""Reading a small user file without trusting it: only a regular file (a link to one is fine), and never
more than a stated cap, so a link to ``/dev/zero``, a FIFO or a huge file is one clear error instead of
a process that reads until the kernel kills it (or blocks forever on an open). ``read_bounded`` reads a
small file whole; ``open_regular`` opens a large one (a part file of a scoring run) for streaming."""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import BinaryIO, Optional

from .errors import DataError

MiB = 1 << 20

_KINDS = ((stat.S_ISDIR, "a folder"), (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISSOCK, "a socket"))


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _open_regular_fd(path: Path, what: str) -> int:
    """A descriptor of ``path`` opened for reading, refused unless it is a regular file (checked on the
    open file; O_NONBLOCK: opening a FIFO never waits for a writer)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror or e})") from e
    try:
        mode = os.fstat(fd).st_mode
    except OSError as e:
        os.close(fd)
        raise DataError(f"{path}: cannot be read ({e.strerror or e})") from e
    if not stat.S_ISREG(mode):
        os.close(fd)
        raise DataError(f"{path}: the {what} is {_kind(mode)}, not a regular file")
    return fd


def open_regular(path: str | Path, what: str = "file", limit: Optional[int] = None) -> BinaryIO:
    """``path`` opened for streaming: a regular file (links followed) whose size is at most ``limit``.

    Raises:
        DataError: naming the file when it cannot be opened, is not a regular file or is too large.
    """
    path = Path(path)
    fd = _open_regular_fd(path, what)
    size = os.fstat(fd).st_size
    if limit is not None and size > limit:
        os.close(fd)
        raise DataError(f"{path}: the {what} is larger than the {_human(limit)} cap for it; is it the right file?")
    return os.fdopen(fd, "rb")


def read_bounded(path: str | Path, limit: int, what: str = "file") -> bytes:
    """The bytes of ``path``, a regular file of at most ``limit`` bytes.

    Args:
        path: the file (symbolic links are followed; the target must be a regular file).
        limit: the most bytes accepted; the error states it.
        what: what the file is, for the error (e.g. 'results JSON').

    Raises:
        DataError: naming the file when it cannot be opened, is not a regular file, or is larger than
            ``limit``. (O_NONBLOCK: opening a FIFO never waits for a writer; fstat then refuses it.)
    """
    path = Path(path)
    fd = _open_regular_fd(path, what)
    try:
        chunks, size = [], 0
        while size <= limit:
            block = os.read(fd, min(1 << 20, limit + 1 - size))
            if not block:
                break
            chunks.append(block)
            size += len(block)
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e.strerror or e})") from e
    finally:
        os.close(fd)
    if size > limit:
        raise DataError(f"{path}: the {what} is larger than the {_human(limit)} cap for it; is it the right file?")
    return b"".join(chunks)


def _human(n: int) -> str:
    return f"{n // MiB} MiB" if n >= MiB and n % MiB == 0 else f"{n} bytes"
