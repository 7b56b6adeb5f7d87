"""What a dataset preparer declares, and the table ``prepare_dataset.py`` lists.

A preparer turns a dataset's own annotation files, exactly as its authors publish them, into a table in
pyiqa's meta-CSV layout. Everything after that (image check, splits, few-label subsets, writing) is
shared (:mod:`.pipeline`), so a new dataset is one small module that builds a :class:`Preparer` and
calls :func:`register`.
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import pandas as pd

from ...utils.errors import ConfigError, DataError
from ...utils.registry import closest
from .user_files import regular_file


@dataclasses.dataclass
class Annotations:
    """One dataset's labels in pyiqa's layout, before images are checked and splits added.

    Attributes:
        table: one row per image, columns in pyiqa's order for this dataset (e.g. ``ref_name,
            dist_name, dmos, std`` for KADID-10k), then whatever else the dataset gives.
        reference_column: for synthetic-distortion sets, the column naming the pristine source; splits
            keep all images of one source on the same side. None: every image is its own content.
        official_split: 'train'/'val'/'test' per row where the dataset defines its own split.
        leading_rows: rows kept at the top of the CSV but outside the benchmark (LIVE Challenge's 7
            "training" images): no split uses them and split indices count rows after them, as
            ``LIVEChallengeDataset`` expects.
        origins: for each row, where it comes from (``"'/data/x.csv' line 5"``), for the messages about
            a repeated image or a bad score; None: ``"row <n> of the annotations"``.
    """

    table: pd.DataFrame
    reference_column: Optional[str] = None
    official_split: Optional[pd.Series] = None
    leading_rows: int = 0
    origins: Optional[Sequence[str]] = None


@dataclasses.dataclass(frozen=True)
class Preparer:
    """A registered dataset.

    Attributes:
        name: command-line name (``prepare_dataset.py tid2013``) and file prefix of its split pickles.
        title: the dataset's usual name, for messages.
        meta_file: the meta CSV's file name, as pyiqa names it (``meta_info_TID2013Dataset.csv``).
        image_dir: folder under ``--root`` that the image column is relative to: the config's
            ``dataroot_target``. '' = ``--root`` itself.
        expects: what must be under ``--root``, for ``--help`` and error messages.
        read: ``read(root) -> Annotations``; raises DataError naming the file it needs.
        mos_range: nominal [lo, hi] of the MOS column (what the configs' ``mos_range`` says).
        lower_better: the label is a distortion score (DMOS): lower means better quality.
        mos_column: the label column of ``Annotations.table``.
        image_column: the column naming each image, relative to ``image_dir`` (the configs'
            ``img_column`` when it is not the first column).
        size: images in the full release, for the README and the closing report.
        marker: a file (or folder) relative to ``--root`` that only the right folder holds, so a
            ``--root`` one level too deep or too shallow is recognised; None: ``image_dir``.
        scale_published: ``mos_range`` is the dataset's published scale, so a score outside it is an
            error; False where the authors publish none (the preparer warns instead).
    """

    name: str
    title: str
    meta_file: str
    image_dir: str
    expects: str
    read: Callable[[Path], Annotations]
    mos_range: Tuple[float, float]
    mos_column: str
    image_column: str = "img_name"
    lower_better: bool = False
    size: Optional[int] = None
    marker: Optional[str] = None
    scale_published: bool = True

    @property
    def markers(self) -> Tuple[str, ...]:
        """What identifies the dataset's folder: the marker, else the image folder ('' = nothing)."""
        return tuple(m for m in (self.marker or self.image_dir,) if m)


PREPARERS: Dict[str, Preparer] = {}


def register(preparer: Preparer) -> Preparer:
    """Add ``preparer`` to the table; a second preparer of the same name is an error."""
    if preparer.name in PREPARERS:
        raise ConfigError(f"a dataset preparer named '{preparer.name}' is already registered")
    PREPARERS[preparer.name] = preparer
    return preparer


def get_preparer(name: str) -> Preparer:
    """The preparer called ``name``; ConfigError listing the known ones (closest first) otherwise."""
    if name not in PREPARERS:
        raise ConfigError(f"unknown dataset '{name}'.{closest(name, PREPARERS)} Known: {sorted(PREPARERS)}")
    return PREPARERS[name]


def require(root: Path, relative: str, title: str, expects: str) -> Path:
    """``root / relative``, or DataError naming the expected path and what ``--root`` should hold.

    A wrong ``--root`` is the most common mistake, so the message says where the file was looked for.
    """
    path = Path(root) / relative
    if not path.exists():
        raise DataError(f"{title}: expected '{relative}' under --root '{root}' ({path} does not exist; "
                        f"{_holds(Path(root))}). --root must be the folder that holds: {expects}")
    if not path.is_dir():
        regular_file(path, f"{title}: '{relative}' under --root")  # a FIFO or /dev/zero would never end
    return path


def read_sheet(path: Path, sheet: Optional[str], title: str, **kwargs) -> pd.DataFrame:
    """Sheet ``sheet`` (None: the first) of the workbook ``path``; DataError listing the sheets found.

    A workbook re-saved with a renamed sheet would otherwise fail with pandas' bare "Worksheet named
    ... not found"; the sheet names tell the user which one holds the labels.
    """
    import zipfile  # only workbooks need it

    regular_file(path, f"{title}: workbook")
    try:
        book = pd.ExcelFile(path, engine="openpyxl")
    except (ValueError, KeyError, OSError, zipfile.BadZipFile) as exc:
        raise DataError(f"{title}: '{path}' cannot be read as an Excel workbook: {exc}") from exc
    with book:
        if sheet is not None and sheet not in book.sheet_names:
            raise DataError(f"{title}: '{path}' has no sheet '{sheet}' (the published workbook's); sheets "
                            f"found: {book.sheet_names}. Rename the sheet that holds the labels to '{sheet}'")
        return pd.read_excel(book, sheet_name=sheet if sheet is not None else 0, **kwargs)


def _holds(root: Path, shown: int = 8) -> str:
    """What ``root`` holds, for a message: 'it holds: a/, b.csv, ...' or why it cannot be listed."""
    if not root.is_dir():
        return "it is not a folder" if root.exists() else "it does not exist"
    entries: List[str] = sorted(p.name + ("/" if p.is_dir() else "") for p in root.iterdir())
    more = f" and {len(entries) - shown} more" if len(entries) > shown else ""
    return f"it holds: {', '.join(entries[:shown]) or 'nothing'}{more}"
