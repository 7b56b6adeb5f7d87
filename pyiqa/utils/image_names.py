"""Image names read from a user's file stay inside the folder they are relative to.

An absolute name, or one whose ``..`` parts climb out of the folder, would make a dataset, a caption list
or a meta CSV read (or send to a server) any file on the machine; such a name is refused with its row
(``allow_absolute`` lets a user who keeps images elsewhere list absolute paths; ``..`` never escapes).
An empty name, or one holding a control character (a newline, a tab, NUL...), is no file name either: it
is a broken cell or a quoting error, refused with its row rather than counted as a missing image.
"""
from __future__ import annotations

import posixpath
import re
from pathlib import PurePosixPath, PureWindowsPath
from typing import Optional

MAX_NAME_CHARS = 1024   # an image name longer than this is not a file name (the OS allows 4096 per path)
_CONTROL = re.compile("[\x00-\x1f\x7f]")


def shown(name: str, limit: int = 120) -> str:
    """``name`` for a one-line message: control characters escaped (``\\n``), shortened past ``limit``."""
    name = _CONTROL.sub(lambda m: repr(m.group())[1:-1], name)
    return name if len(name) <= limit else f"{name[:limit // 2]}...({len(name)} characters)"


def name_problem(name: str, allow_absolute: bool = False, option: Optional[str] = None) -> Optional[str]:
    """Why ``name`` is no image name relative to its folder, or None when it is one."""
    if len(name) > MAX_NAME_CHARS:
        return f"is longer than {MAX_NAME_CHARS} characters; expected a file name"
    if not name.strip():
        return "is empty; expected a file name"
    if "\x00" in name:
        return "holds a NUL character"
    control = _CONTROL.search(name)
    if control:
        return (f"holds the control character {control.group()!r} (U+{ord(control.group()):04X}); expected a "
                "file name (a newline in a name is usually a quote left open in the cell)")
    absolute = PurePosixPath(name).is_absolute() or PureWindowsPath(name).is_absolute() or \
        bool(PureWindowsPath(name).drive)
    if absolute:
        hint = f" ({option} allows absolute paths)" if option else ""
        return None if allow_absolute else f"is an absolute path; names must be relative to the image folder{hint}"
    if posixpath.normpath(name.replace("\\", "/")).split("/")[0] == "..":
        return "climbs out of the image folder ('..'); names must stay inside it"
    return None
