"""JSON-lines files of the corpus tools: the one reader, and an append-only log that survives kills.

:func:`read_jsonl` reads every JSONL the tools exchange (descriptions, kept comments). :class:`JsonlLog`
is the results store of long, resumable jobs.

Each record is one ``write`` of a whole line, flushed and fsynced before the next, by a single writer.
A process killed mid-write can leave at most one torn last line; :meth:`JsonlLog.open` cuts it off
(with a warning) so the file is valid again and the job can go on where it stopped. Reading streams the
records, so resuming a 250k-image run does not hold them all in memory. An exclusive lock
(POSIX) keeps two runs from appending to the same file at once.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import IO, Any, Dict, Iterator, Optional, Tuple, Union

from pyiqa.data.prepare.user_files import regular_file, size_text
from pyiqa.utils.errors import DataError, OutputError

try:
    import fcntl
except ImportError:  # Windows: no advisory lock; one run per file is then the user's job
    fcntl = None

logger = logging.getLogger(__name__)

MAX_LINE_BYTES = 16 * 2 ** 20  # one record: a description is ~1 KB, an image's kept comments < 1 MB


def read_jsonl(path: Union[str, Path], what: str = "JSON-lines file") -> Iterator[Tuple[int, Dict[str, Any]]]:
    """(line number, record) of each non-blank line of ``path``, streamed.

    A last line that is not a JSON object is skipped with a warning: a writer killed mid-line leaves
    one. Any other such line is a DataError naming the file and the line (the file was edited, or is
    not an output of these tools), as is a line over MAX_LINE_BYTES or a path that is no regular file
    (a FIFO or ``/dev/zero`` would never end).

    Args:
        what: the kind of file, for messages ('Descriptions file').
    """
    path = regular_file(path, what)
    bad: Optional[Tuple[int, bytes]] = None
    with open(path, "rb") as f:
        for number, line in enumerate(iter(lambda: f.readline(MAX_LINE_BYTES + 1), b""), start=1):
            if len(line) > MAX_LINE_BYTES:
                raise DataError(f"'{path}' line {number} is longer than {size_text(MAX_LINE_BYTES)}, the cap "
                                f"for one record; is it the right file?")
            if not line.strip():
                continue
            if bad is not None:
                raise DataError(f"'{path}' line {bad[0]} is not a JSON object: {bad[1][:80]!r}; the file "
                                "was edited or is not an output of this tool")
            record = _parse(line)
            if record is None:
                bad = (number, line)
                continue
            yield number, record
    if bad is not None:
        logger.warning("'%s' line %d is not a complete JSON object (a write cut short by a kill?); "
                       "skipped", path, bad[0])


class JsonlLog:
    """Append records durably to ``path`` (after :meth:`open`); :meth:`records` streams those already there."""

    def __init__(self, path: Union[str, Path]) -> None:
        self.path = Path(path)
        self._file: Optional[IO[bytes]] = None

    def open(self) -> "JsonlLog":
        """Create and lock the file, and cut off a torn last line left by a killed writer.

        Raises:
            OutputError: the file cannot be created, or another process holds it.
        """
        if os.path.lexists(self.path) and not self.path.is_file():
            raise OutputError(f"'{self.path}' exists and is not a regular file (a folder, a FIFO, a device or a "
                              "broken link); name a new file or a results file of this tool")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "ab")
        except OSError as exc:
            raise OutputError(f"Cannot write '{self.path}': {exc}") from exc
        if fcntl is not None:
            try:
                fcntl.flock(self._file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                self.close()
                raise OutputError(f"'{self.path}' is in use by another run; let it finish or stop it "
                                  "first") from exc
        self._repair_tail()
        return self

    def records(self) -> Iterator[Dict[str, Any]]:
        """The records in the file, streamed (a dataset's worth never has to sit in memory at once).

        Raises:
            DataError: a line is not a JSON object (the file was edited or is not ours): its number.
        """
        for _, record in read_jsonl(self.path, "Results file"):
            yield record

    def append(self, record: Dict[str, Any]) -> None:
        """Write ``record`` as one line and make it durable before returning."""
        if self._file is None:
            raise RuntimeError(f"JsonlLog('{self.path}') is not open")
        try:
            self._file.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
            self._file.flush()
            os.fsync(self._file.fileno())
        except OSError as exc:  # disk full, file system gone: stop; what was written stays valid
            raise OutputError(f"Cannot append to '{self.path}': {exc}") from exc

    def close(self) -> None:
        if self._file is not None:
            self._file.close()  # also releases the lock
            self._file = None

    def _repair_tail(self) -> None:
        """Truncate an unterminated last line, or a last line that does not parse (cut at a newline)."""
        last = end = 0  # start of the last non-blank complete line; end of the complete lines
        with open(self.path, "rb") as f:
            for line in f:
                if not line.endswith(b"\n"):
                    break  # only the very last line can lack its newline
                if line.strip():
                    last = end
                end += len(line)
            keep = end
            if end == self.path.stat().st_size and last < end:
                f.seek(last)
                if _parse(f.read(end - last)) is None:
                    keep = last
        size = self.path.stat().st_size
        if keep < size:
            logger.warning("'%s' ends with an incomplete line (a run was killed while writing it); "
                           "removed its %d bytes, that record's work is redone", self.path, size - keep)
            os.truncate(self.path, keep)


def _parse(line: bytes) -> Optional[Dict[str, Any]]:
    try:
        record = json.loads(line)
    except (UnicodeDecodeError, ValueError):
        return None
    return record if isinstance(record, dict) else None
