"""Helpers for datasets whose annotation file name and image folder their authors do not publish (AGIN,
ECIQAD): find the one table under ``--root`` by its columns and each image by its file name, so the
preparer works whatever folder names the user's archive has, and says what it found when it cannot."""
from __future__ import annotations

from pathlib import Path
from typing import Dict, List, Sequence

import pandas as pd

from ...utils.errors import DataError
from .user_files import read_csv

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}


def table_with_columns(root: Path, need: Sequence[Sequence[str]], title: str, expects: str) -> Path:
    """The one CSV directly under ``root`` whose header has, for each group in ``need``, one of its names."""
    found: List[Path] = []
    for path in sorted(Path(root).glob("*.csv")):
        try:
            header = set(read_csv(path, title, rows_required=False, nrows=0).columns.astype(str).str.strip())
        except DataError:
            continue  # not a readable CSV (or not a regular file): not the table
        if all(header & set(group) for group in need):
            found.append(path)
    if len(found) != 1:
        what = "none" if not found else f"{len(found)}: {[p.name for p in found]}"
        wanted = " and ".join("/".join(group) for group in need)
        raise DataError(f"{title}: expected one CSV directly under --root '{root}' with the columns {wanted}; "
                        f"found {what}. --root must be the folder that holds {expects}")
    return found[0]


def column(header: Sequence[str], names: Sequence[str]) -> str:
    """The first of ``names`` in ``header`` (``table_with_columns`` made sure one is)."""
    return next(n for n in names if n in header)


def image_paths(root: Path, title: str, skip: str = "") -> Dict[str, str]:
    """Image file name -> its path relative to ``root``, searching every folder (those whose name contains
    ``skip`` excepted). A name found in two places is an error naming both: the table could mean either."""
    paths: Dict[str, List[str]] = {}
    for path in sorted(Path(root).rglob("*")):
        rel = path.relative_to(root)
        if path.suffix.lower() in IMAGE_SUFFIXES and not (skip and any(skip in p for p in rel.parts[:-1])):
            paths.setdefault(path.name, []).append(rel.as_posix())
    for name, where in paths.items():
        if len(where) > 1:
            raise DataError(f"{title}: image '{name}' exists in {len(where)} places under '{root}' ({where}); "
                            f"keep one copy so the table's names are unambiguous")
    return {name: where[0] for name, where in paths.items()}
