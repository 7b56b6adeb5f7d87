"""From a preparer's annotations to the files the configs read: meta CSV, split pickles, subsets.

``prepare(name, root, out)`` writes into ``out``:

* ``meta_info_<Name>Dataset.csv``: pyiqa's columns for the dataset, then ten 80/20 split columns
  ``ratio802_seed123_split_01..10`` (train/test), ten 70/10/20 columns ``ratio712_seed123_split_01..10``
  (train/val/test) and, where the dataset defines one, ``official_split``;
* ``<name>_ratio802_seed123.pkl`` and ``<name>_ratio712_seed123.pkl``: the same splits as pyiqa split
  pickles ``{1..10: {'train', 'val', 'test'}}``; ``<name>_official.pkl`` = ``{1: official split}``;
* ``<name>_fewlabel{N}_seed123.pkl``: repeat k (1..10) trains on N images drawn from the train part of
  80/20 split k and tests on that split's test part (select a repeat with ``split_index: k``).

Before that, what a real download needs: ``--root`` one level too deep or too shallow is found by the
preparer's marker file, the images in the folder the archive really uses and under another letter case
(:mod:`.locate`). An image listed twice with the same MOS is kept once (logged); with different MOS it is
an error naming both rows, unless the preparer resolved it by a rule of its own (AGIQA-1K). A MOS cell
that is empty, text, infinite or negative, or outside the dataset's published scale (``mos_range``), is an
error naming the row; so is an annotation table without rows, and an image name that is absolute or
climbs out of the image folder with ``..`` (:mod:`.user_files`). Rows whose image is missing on
disk are reported and left out before any split is drawn. Every file is written atomically and only
when its bytes change, so a re-run is a no-op.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import pickle
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import pandas as pd
from tqdm import tqdm

from ...utils.atomic import write_if_changed
from ...utils.errors import ConfigError, DataError
from ..meta_info import SPLIT_NAMES, Split
from ..splits import split_pickle_name
from .label_checks import drop_repeats, in_range, scores
from .locate import find_images, find_root
from .registry import Annotations, Preparer, get_preparer
from .split_maker import FEW_LABELS, RATIOS, few_label_splits, random_splits, split_columns
from .user_files import check_names

logger = logging.getLogger(__name__)

OFFICIAL_COLUMN = "official_split"
PROGRESS_MIN_IMAGES = 2000


@dataclasses.dataclass
class Report:
    """What ``prepare`` did: row counts, missing images, the files written and the dataroot to use."""

    name: str
    rows: int
    missing: List[str]
    dataroot: Path
    files: List[Path]
    written: List[Path]
    split_sizes: Dict[str, Dict[str, int]]
    few_label_skipped: List[int]


def prepare(name: str, root: os.PathLike, out: os.PathLike,
            few_labels: Sequence[int] = FEW_LABELS, few_labels_required: bool = False) -> Report:
    """Prepare dataset ``name`` whose download is under ``root``; write the files into ``out``.

    Args:
        few_labels: few-label subset sizes; a size larger than a split's train part is skipped with a
            warning (the defaults exceed small datasets)...
        few_labels_required: ...unless the user asked for the sizes (``--few-label``): then it is an
            error naming the dataset's size, before anything is written.

    Raises:
        ConfigError: unknown dataset name, or a required few-label size larger than the train part.
        DataError: ``root`` is not a folder, an annotation file is missing or malformed, or none of
            the listed images exists.
        OutputError: ``out`` cannot be written.
    """
    preparer = get_preparer(name)
    root, out = Path(root), Path(out)
    if not root.is_dir():
        raise DataError(f"{preparer.title}: --root '{root}' is not a folder "
                        f"({'a file' if root.exists() else 'it does not exist'}); it must hold: "
                        f"{preparer.expects}")
    root = find_root(root, preparer.markers, preparer.title)
    annotations = preparer.read(root)
    table, official, lead = _check_table(annotations, preparer)
    dataroot, on_disk = find_images(root, preparer.image_dir, table[preparer.image_column].astype(str).tolist(),
                                    preparer.title)
    if not dataroot.is_dir():
        raise DataError(f"{preparer.title}: image folder '{dataroot}' does not exist; --root must hold: "
                        f"{preparer.expects}")
    table[preparer.image_column] = on_disk
    table, official, missing = _drop_missing(table, official, lead, dataroot, preparer)
    body = table.iloc[lead:]
    groups = None if annotations.reference_column is None else body[annotations.reference_column].astype(str)
    splits = {ratio: random_splits(len(body), ratio, groups) for ratio in RATIOS}
    columns = [split_columns(splits[ratio], len(body), ratio, offset=lead) for ratio in RATIOS]
    csv_table = pd.concat([table.reset_index(drop=True)] + columns, axis=1)
    pickles: Dict[str, Dict[int, Split]] = {f"ratio{r}": s for r, s in splits.items()}
    if official is not None:
        if OFFICIAL_COLUMN not in csv_table.columns:
            csv_table[OFFICIAL_COLUMN] = [""] * lead + official.tolist()
        pickles["official"] = {1: {part: np.flatnonzero(official.to_numpy() == part).tolist()
                                   for part in SPLIT_NAMES}}
    if few_labels_required:
        _check_few_labels(few_labels, splits["802"], len(body), preparer.title)
    skipped = []
    for n in few_labels:
        try:
            pickles[f"fewlabel{n}"] = few_label_splits(splits["802"], n)
        except ValueError as exc:
            skipped.append(n)
            logger.warning("%s: no %d-label subsets: %s", preparer.title, n, exc)

    files = {out / preparer.meta_file: csv_table.to_csv(index=False, lineterminator="\n").encode()}
    for kind, value in pickles.items():
        files[out / split_pickle_name(preparer.name, kind)] = pickle.dumps(_plain(value), protocol=4)
    written = [path for path, data in files.items() if write_if_changed(path, data)]
    sizes = {kind: {part: len(rows) for part, rows in value[1].items()} for kind, value in pickles.items()}
    report = Report(preparer.name, len(body), missing, dataroot, list(files), written, sizes, skipped)
    logger.info("%s: %d images (%d missing), %d files in '%s' (%d changed); dataroot_target: %s",
                preparer.title, len(body), len(missing), len(files), out, len(written), dataroot)
    return report


def _check_few_labels(sizes: Sequence[int], splits: Dict[int, Split], images: int, title: str) -> None:
    """ConfigError for a few-label size that no 80/20 split's train part can hold."""
    train = min(len(split["train"]) for split in splits.values())
    too_big = [n for n in sizes if n > train]
    if too_big:
        digits = str(too_big[0])
        shown = digits if len(digits) <= 24 else f"{digits[:12]}...({len(digits)} digits)"
        raise ConfigError(f"--few-label {shown}: {title} has {images} images here, so the train part of "
                          f"its 80/20 splits holds {train}; a few-label size must be from 1 to {train}")


def _check_table(annotations: Annotations, preparer: Preparer):
    """The table with repeats dropped, its official split aligned, and the number of leading rows."""
    table = annotations.table.reset_index(drop=True)
    for column in (preparer.image_column, preparer.mos_column, annotations.reference_column):
        if column is not None and column not in table.columns:
            raise DataError(f"{preparer.title} preparer: column '{column}' missing from its table "
                            f"{list(table.columns)}")
    lead = annotations.leading_rows
    official = annotations.official_split
    if official is not None and len(official) != len(table) - lead:
        raise DataError(f"{preparer.title} preparer: official split has {len(official)} "
                        f"entries for {len(table) - lead} rows")
    if official is not None:
        bad = sorted(set(map(str, official)) - set(SPLIT_NAMES))
        if bad:
            raise DataError(f"{preparer.title} preparer: official split values {bad}; expected {list(SPLIT_NAMES)}")
    origins = list(annotations.origins) if annotations.origins is not None else \
        [f"row {i + 1} of the annotations" for i in range(len(table))]
    if len(origins) != len(table):
        raise DataError(f"{preparer.title} preparer: {len(origins)} row origins for {len(table)} rows")
    where = preparer.title
    body = slice(lead, None)
    if len(table) <= lead:
        raise DataError(f"{where}: the annotations list no images (a header and no rows?); --root must "
                        f"hold {preparer.expects}")
    for column in (preparer.image_column, annotations.reference_column):
        if column is not None:
            check_names(table[column].astype(str), origins, f"{where}:")
    values = scores(table[preparer.mos_column].iloc[body], origins[body], preparer.mos_column, where,
                    negative=preparer.mos_range[0] < 0)
    if preparer.scale_published:
        in_range(values, origins[body], preparer.mos_column, f"{where}:", preparer.mos_range)
    marked = table.assign(_row=np.arange(len(table)))
    kept = drop_repeats(marked, preparer.image_column, [preparer.mos_column], origins, where)["_row"].to_numpy()
    if len(kept) < len(table):
        table = table.iloc[kept].reset_index(drop=True)
        if official is not None:
            official = pd.Series(np.asarray(official, dtype=object)[kept[kept >= lead] - lead])
    return table, official, lead


def _drop_missing(table: pd.DataFrame, official: Optional[pd.Series], lead: int, dataroot: Path,
                  preparer: Preparer):
    """Leave out benchmark rows whose image is not a file under ``dataroot``; warn with a count."""
    names = table[preparer.image_column].astype(str).tolist()
    found = [(dataroot / n).is_file() for n in tqdm(
        names, desc=f"{preparer.title}: checking images", unit="img",
        disable=len(names) < PROGRESS_MIN_IMAGES or None)]
    found = np.asarray(found, dtype=bool)
    keep = found.copy()
    keep[:lead] = True  # rows outside the benchmark stay, so the row offset stays what readers expect
    missing = [n for n, ok in zip(names[lead:], found[lead:]) if not ok]
    if missing and len(missing) == len(names) - lead:
        raise DataError(f"{preparer.title}: none of the {len(missing)} images listed is under '{dataroot}' "
                        f"(first expected: {dataroot / missing[0]}); is --root the folder that holds "
                        f"{preparer.expects}?")
    if missing:
        logger.warning("%s: %d of %d listed images are missing under '%s' and are left out, e.g. %s",
                       preparer.title, len(missing), len(names) - lead, dataroot, missing[:10])
    if official is not None:
        official = pd.Series(np.asarray(official, dtype=object)[keep[lead:]]).astype(str)
    return table[keep].reset_index(drop=True), official, missing


def _plain(value):
    """Python ints and lists only, so the pickle loads with the restricted split-file unpickler."""
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return [int(v) for v in value]
