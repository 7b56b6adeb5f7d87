"""No command writes over one of its own inputs.

An output that already exists and is the same file as an input (the same path, another spelling, a
symbolic or a hard link) would be emptied or appended to before, or while, the input is read. Checked
by device and inode, before anything is opened for writing; an output that does not exist yet cannot be
an input.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Dict, Iterable, Sequence, Tuple, Union

from .errors import OutputError

PathLike = Union[str, Path]


def refuse_writing_over_inputs(outputs: Sequence[Tuple[str, PathLike]],
                               inputs: Iterable[Tuple[str, PathLike]]) -> None:
    """Raise OutputError when an output is the same file as an input.

    Args:
        outputs: (what, path) of each file the command will write, e.g. ('--out', 'kept.jsonl').
        inputs: (what, path) of each file it reads, e.g. ('--comments', 'AVA_Comments.txt'); an input
            that cannot be stat-ed is skipped (its reader reports it).
    """
    existing: Dict[Tuple[int, int], Tuple[str, PathLike]] = {}
    for what, path in outputs:
        try:
            st = os.stat(path)
        except OSError:
            continue
        existing[(st.st_dev, st.st_ino)] = (what, path)
    if not existing:
        return
    for what, path in inputs:
        try:
            st = os.stat(path)
        except OSError:
            continue
        hit = existing.get((st.st_dev, st.st_ino))
        if hit is not None:
            raise OutputError(f"{hit[0]} '{hit[1]}' is the same file as the input {what} '{path}'; refusing "
                              "to write over it: give the output another name")
