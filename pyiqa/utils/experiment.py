"""Where a run writes (``<root>/experiments/<name>/{models,training_states,tb_logger}``, its log and
options) and the rules that keep runs from destroying each other.

* ``name`` is one path component: it can neither rename ``experiments/`` itself (``''``) nor write
  outside it (``../x``).
* One live run per name: the running process holds an exclusive ``flock`` on
  ``experiments/.<name>.lock``. The kernel drops it when the process ends, however it ends (SIGKILL
  included), so a lock left by a killed run is simply taken over; a second live run of the same name
  stops with the holder's PID, and a locked folder is never archived.
* A previous run's folder is renamed ``<name>_archived_<time>``, never overwritten.
"""
from __future__ import annotations

import errno
import fcntl
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

from .errors import ConfigError, OutputError, PyiqaError

logger = logging.getLogger(__name__)

STATE_RE = re.compile(r"(\d+)\.state")


class RunInUseError(PyiqaError):
    """Another live process is training under the same experiment name."""


def check_run_name(name: object, where: str = "name") -> str:
    """``name`` if it is usable as one folder name, else a ConfigError saying why."""
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"'{where}' must be a non-empty folder name, got {name!r}")
    if name in (".", "..") or "/" in name or "\\" in name or "\0" in name or Path(name).is_absolute():
        raise ConfigError(f"'{where}' must be a single folder name (no '/', '\\', '.' or '..'): the run "
                          f"writes to experiments/<name>/; got {name!r}")
    return name


def check_is_folder_or_absent(folder: Path) -> None:
    """Refuse a file (or other non-folder) where a run's folder goes: it is not an earlier run to archive."""
    if (folder.exists() or folder.is_symlink()) and not folder.is_dir():
        raise OutputError(f"'{folder}' exists and is not a folder; the run writes its folder there. Move or "
                          "rename that file, or choose another 'name'")


def archive(folder: Path) -> Optional[Path]:
    """Rename an existing ``folder`` to ``<folder>_archived_<time>`` (with a counter if that exists)."""
    if not folder.exists():
        return None
    check_is_folder_or_absent(folder)
    stamp = time.strftime("%Y%m%d_%H%M%S")
    target = folder.with_name(f"{folder.name}_archived_{stamp}")
    k = 1
    while target.exists():
        k += 1
        target = folder.with_name(f"{folder.name}_archived_{stamp}_{k}")
    try:
        folder.rename(target)
    except OSError as err:
        raise OutputError(f"Cannot move the previous run's folder {folder} to {target}: "
                          f"{err.strerror or err}") from err
    return target


_HELD: "set[RunLock]" = set()


def release_locks() -> None:
    """Release every run lock this process holds (a trainer that failed half-way, in-process callers)."""
    for lock in list(_HELD):
        lock.release()


ORPHAN_WAIT_S = 30.0  # how long a dead holder's worker processes may keep a run lock


def _alive(pid: str) -> bool:
    """Whether process ``pid`` (as written in a lock file) exists; unknown values count as alive."""
    try:
        os.kill(int(pid), 0)
    except (ValueError, PermissionError):
        return True
    except ProcessLookupError:
        return False
    return True


class RunLock:
    """Exclusive lock of one experiment name, held by this process until :meth:`release` or exit."""

    def __init__(self, path: Path, folder: Path):
        self.path, self.folder = path, folder
        self._fd: Optional[int] = None

    def acquire(self) -> "RunLock":
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as err:
            raise OutputError(f"Cannot create the run lock {self.path}: {err.strerror or err}") from err
        deadline = None
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as err:
                holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
                if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                    os.close(fd)
                    raise OutputError(f"Cannot lock {self.path}: {err.strerror or err}") from err
                # A run killed a moment ago: its DataLoader workers (forked, sharing the lock) outlive it
                # by a few seconds until they notice. Wait for them rather than refuse.
                if deadline is None and not _alive(holder):
                    logger.info("The run that held %s (PID %s) has ended; waiting for its worker processes "
                                "to exit", self.folder, holder)
                    deadline = time.monotonic() + ORPHAN_WAIT_S
                if deadline is None or time.monotonic() > deadline:
                    os.close(fd)
                    raise RunInUseError(
                        f"Experiment folder {self.folder} is in use by a running training process (PID "
                        f"{holder}{', or its leftover worker processes' if deadline else ''}); wait for it "
                        "to finish, stop it, or give this run another 'name'") from None
                time.sleep(0.2)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        _HELD.add(self)
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None
        _HELD.discard(self)


@dataclass(frozen=True)
class ExperimentPaths:
    root: Path
    name: str

    @property
    def exp_dir(self) -> Path:
        return self.root / "experiments" / self.name

    @property
    def models(self) -> Path:
        return self.exp_dir / "models"

    @property
    def training_states(self) -> Path:
        return self.exp_dir / "training_states"

    @property
    def tb_logger(self) -> Path:
        return self.exp_dir / "tb_logger"

    def lock(self) -> RunLock:
        """The (not yet acquired) lock of this experiment name."""
        return RunLock(self.root / "experiments" / f".{self.name}.lock", self.exp_dir)

    def prepare(self, resume: bool) -> Optional[Path]:
        """Create the folders (call while holding :meth:`lock`). Resuming keeps the folder and removes
        the ``.tmp`` files of a save that was killed mid-write; otherwise a previous run's folder is
        archived. Returns the archive path when an old run was moved away.
        """
        archived = None if resume else archive(self.exp_dir)
        if resume:
            stale = [p for d in (self.models, self.training_states) if d.is_dir() for p in d.glob(".*.tmp")]
            for p in stale:
                p.unlink()
            if stale:
                logger.info("Removed %d unfinished temporary file(s) of an interrupted save, e.g. %s",
                            len(stale), stale[0])
        try:
            for d in (self.models, self.training_states):
                d.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise OutputError(f"Cannot create the experiment folder {self.exp_dir}: "
                              f"{err.strerror or err}") from err
        return archived

    def state_files(self) -> List[Path]:
        """Training states, newest (highest iteration) first."""
        if not self.training_states.is_dir():
            return []
        states = [(int(m.group(1)), p) for p in self.training_states.iterdir()
                  if (m := STATE_RE.fullmatch(p.name))]
        return [p for _, p in sorted(states, reverse=True)]


def resume_candidates(explicit: Optional[str], paths: ExperimentPaths, auto_resume: bool) -> List[Path]:
    """States to resume from, in order of preference: ``explicit`` (``path.resume_state``) alone when
    set, else with ``--auto_resume`` every training state of the run, newest first (an unreadable one
    is skipped)."""
    if explicit:
        return [Path(explicit)]
    return paths.state_files() if auto_resume else []
