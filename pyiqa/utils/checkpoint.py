"""Checkpoint files: crash-safe writes, and the one reader of every torch file the package opens.

Writes are atomic (a run killed at any moment leaves the last complete file loadable). Reads always use
``torch.load(weights_only=True)``: a torch file is a pickle, and unpickling arbitrary Python objects can
run code, so a file that holds anything but tensors and plain containers/numbers/strings is refused.
"""
from __future__ import annotations

import errno
import re
import zipfile
from pathlib import Path
from typing import Any

import torch

from .atomic import atomic_write  # noqa: F401  (re-exported: the checkpoint writers' helper)
from .errors import CheckpointError


def atomic_save(obj: Any, path: str | Path) -> None:
    """``torch.save`` with :func:`atomic_write`; a failed write is an OSError (see :func:`save_to`)."""
    atomic_write(path, lambda f: save_to(obj, f, path))


def save_to(obj: Any, f: Any, path: str | Path) -> None:
    """``torch.save(obj, f)``. torch's zip writer reports a failed write (disk full, ``ulimit -f``) as a
    RuntimeError ('[enforce fail at inline_container.cc] unexpected pos', 'PytorchStreamWriter failed
    writing file'); it becomes an OSError naming ``path``, which every writer already turns into one
    clear error."""
    try:
        torch.save(obj, f)
    except RuntimeError as err:
        if not is_write_failure(err):
            raise
        raise OSError(errno.EIO, f"the write failed ({str(err).splitlines()[0].strip()})", str(path)) from err


def is_write_failure(err: BaseException) -> bool:
    """Whether ``err`` is torch's RuntimeError for a file write that failed."""
    text = str(err)
    return isinstance(err, RuntimeError) and any(
        key in text for key in ("inline_container", "PytorchStreamWriter", "file write failed", "unexpected pos"))


class TorchScriptArchiveError(CheckpointError):
    """The file is a TorchScript archive (``torch.jit.save``), not a ``torch.save`` checkpoint.

    Raised by :func:`load_checkpoint` so the one reader that accepts TorchScript (OpenAI's original
    CLIP files, read by ``pyiqa.archs.clip_backbone``) can fall back to ``torch.jit.load``.
    """


def load_checkpoint(path: str | Path, what: str = "checkpoint", mmap: bool = False) -> Any:
    """Read a ``torch.save`` file on the CPU with ``weights_only=True``: the only way this package
    opens torch files, so a planted file can never run code.

    Args:
        path: the file.
        what: what the file should be, named in errors ("training state", "adapter checkpoint", ...).
        mmap: map the file instead of reading it: tensors are file-backed and their bytes are read
            only when used (ignored for the legacy non-zip format, which cannot be mapped).

    Raises:
        CheckpointError: the file is missing, corrupt or truncated, or refused because it holds
            pickled Python objects (the message names the object and what to do if it is trusted).
        TorchScriptArchiveError: the file is a TorchScript archive.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"No {what} file exists at '{path}'.")
    mmap = mmap and zipfile.is_zipfile(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    except Exception as err:  # torch raises many types for corrupt, truncated or refused files
        raise _read_error(err, path, what) from err


def _read_error(err: Exception, path: Path, what: str) -> CheckpointError:
    """The CheckpointError that explains why ``torch.load`` failed on ``path``."""
    msg = str(err)
    what_ = what[:1].upper() + what[1:]  # 'CLIP checkpoint' stays as is; str.capitalize would not
    if "TorchScript archive" in msg:
        return TorchScriptArchiveError(f"{what_} '{path}' is a TorchScript archive "
                                       "(torch.jit.save), not a torch.save checkpoint.")
    found = re.search(r"Unsupported global: GLOBAL (\S+)", msg)
    if found:
        return CheckpointError(
            f"{what_} '{path}' was refused: it holds pickled Python objects (global "
            f"{found.group(1)}), and loading those could run code, so only tensors and plain "
            "containers, numbers and strings are read (torch.load weights_only=True). If you trust "
            "the file's source, load it yourself with torch.load(path, weights_only=False), keep only "
            "its tensors (e.g. the state dict) and re-save them with torch.save(tensors, new_path).")
    unpickler = re.search(r"WeightsUnpickler error: *([^\n]*)", msg)
    detail = unpickler.group(1).strip() if unpickler else (msg.strip().splitlines() or [""])[0]
    return CheckpointError(f"Cannot read {what} '{path}': not a readable torch file, corrupt or "
                           f"truncated ({type(err).__name__}{': ' + detail if detail else ''}). Copy or "
                           "write it again.")
