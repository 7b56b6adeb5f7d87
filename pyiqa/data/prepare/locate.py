"""Where a user's download really is: ``--root`` one level too deep or too shallow, the folder the images
really sit in, and their names' letter case.

Archives are unpacked in many ways (into a folder of their own name, or the user points ``--root`` at the
image folder itself), and some images are published as ``.JPG`` while the annotations say ``.jpg``. The
preparer looks one level above and below for the folder that holds the dataset's marker file, and for
the folder that holds the listed images, and says in the log what it used instead of failing.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

from ...utils.errors import DataError

logger = logging.getLogger(__name__)

SAMPLE = 50          # listed images looked for when deciding which folder holds them
SEARCH_DEPTH = 3     # folder levels under --root searched for the images


def find_root(root: Path, markers: Sequence[str], title: str) -> Path:
    """``root``, or the closest folder up to two levels above or below it that holds ``markers``.

    Returns ``root`` itself when no folder holds them, so the preparer's own message names the file it
    expected. Raises DataError when several folders below ``root`` hold them (which one is meant?).
    """
    if not markers or _holds_all(root, markers):
        return root
    found: List[Path] = [p for p in list(root.parents)[:2] if _holds_all(p, markers)][:1]
    if not found:
        found = [d for d in _folders(root, depth=2) if _holds_all(d, markers)]
    if len(found) > 1:
        raise DataError(f"{title}: --root '{root}' does not hold {list(markers)} itself; "
                        f"{len(found)} folders below it do: {[str(p) for p in found]}. Pass the one to use")
    if found:
        logger.warning("%s: --root '%s' does not hold %s; using '%s', which does", title, root,
                       list(markers), found[0])
        return found[0]
    return root


def find_images(root: Path, image_dir: str, names: Sequence[str], title: str) -> Tuple[Path, List[str]]:
    """The folder that holds the listed images and each name as spelled on disk.

    ``root / image_dir`` when it holds any of the first listed images; else the one folder under ``root``
    (up to SEARCH_DEPTH levels) that holds the most of them (the archive's real sub-folder). A name
    missing in its listed spelling but present with another letter case (``.JPG`` for ``.jpg``) is
    returned as spelled on disk, so the meta CSV works on case-sensitive file systems; names found in
    neither spelling are returned unchanged (the pipeline reports them missing).
    """
    expected = Path(root) / image_dir
    sample = list(names[:SAMPLE])
    dataroot = expected
    if not _hits(expected, sample):
        scored = [(n, d) for d in _folders(Path(root), depth=SEARCH_DEPTH) if (n := _hits(d, sample))]
        if scored:
            best = max(n for n, _ in scored)
            dataroot = min((d for n, d in scored if n == best), key=lambda d: len(d.parts))
            logger.warning("%s: the images are under '%s', not '%s' (%d of the first %d listed found "
                           "there); using it", title, dataroot, expected, best, len(sample))
    return dataroot, _spelled_on_disk(dataroot, names, title)


def _spelled_on_disk(dataroot: Path, names: Sequence[str], title: str) -> List[str]:
    missing = [i for i, n in enumerate(names) if not (dataroot / n).is_file()]
    if not missing or not dataroot.is_dir():
        return list(names)
    index: Dict[str, str] = {}
    for folder, _, files in os.walk(dataroot):
        rel = Path(folder).relative_to(dataroot)
        for f in files:
            index.setdefault((rel / f).as_posix().lower(), (rel / f).as_posix())
    out, renamed = list(names), []
    for i in missing:
        disk = index.get(Path(names[i]).as_posix().lower())
        if disk is not None:
            renamed.append(f"{names[i]} -> {disk}")
            out[i] = disk
    if renamed:
        logger.warning("%s: %d image(s) are on disk with other letter case than listed, e.g. %s; the meta "
                       "CSV names them as on disk", title, len(renamed), renamed[:3])
    return out


def _holds_all(folder: Path, markers: Sequence[str]) -> bool:
    return folder.is_dir() and all((folder / m).exists() for m in markers)


def _hits(folder: Path, sample: Sequence[str]) -> int:
    """How many of ``sample`` are files in ``folder``, in their spelling or with the suffix's other case."""
    if not folder.is_dir():
        return 0
    count = 0
    for name in sample:
        path = folder / name
        count += path.is_file() or path.with_suffix(path.suffix.swapcase()).is_file()
    return count


def _folders(root: Path, depth: int) -> List[Path]:
    """Folders under ``root`` up to ``depth`` levels, breadth first, hidden ones skipped."""
    out: List[Path] = []
    level = [root] if root.is_dir() else []
    for _ in range(depth):
        below = []
        for folder in level:
            try:
                below += sorted(Path(e.path) for e in os.scandir(folder)
                                if e.is_dir() and not e.name.startswith("."))
            except OSError:
                continue
        out += below
        level = below
    return out
