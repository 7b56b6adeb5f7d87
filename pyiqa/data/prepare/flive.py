"""FLIVE / PaQ-2-PiQ (Ying et al., CVPR 2020): 39,810 in-the-wild pictures with MOS (plus patch MOS).

Published layout (``database/`` of the FLIVE_Database / PaQ-2-PiQ release): the images in source
subfolders (``voc_emotic_ava/``, ``blur_dataset/``, ``EE371R/``; patches in ``patches/``) and, next to
them, the label CSVs:

* ``labels_image.csv``: header ``name,mos``; ``name`` relative to ``database/``
  (``voc_emotic_ava/AVA__129332.jpg``), MOS on 0-100, higher = better (one image has MOS 0). Checked on
  the real file (github.com/baidut/PaQ-2-PiQ): 39,810 unique names, CRLF line ends.
* ``labels=640_padded.csv`` (the authors' ``labels<=640_padded.csv``, either name is accepted): the
  training images (<= 640 pixels) with ``name_image`` and ``is_valid`` (True = validation part).
* ``labels640.csv`` (the authors' ``labels>640.csv``, either name is accepted): the larger test images,
  ``name_image`` and the image/patch MOS and boxes; real file: 1,827 rows, 30 columns. The padded list is
  too large for the public mirrors we could read: its two columns are the ones pyiqa's script reads.

Official split, derived as pyiqa's ``scripts/process_flive.py`` does: ``test`` = the images of
``labels640.csv``, ``val`` = ``is_valid`` rows of ``labels=640_padded.csv``, ``train`` = every other
image (about 30k / 7.7k / 1.8k). pyiqa's ``meta_info_FLIVEDataset.csv`` is ``img_name/patch_name, mos,
split`` with the 119k patches (``labels_patch.csv``) after the images and ``split`` coded 0/1/2. We
write the images only (what is benchmarked) as ``img_name, mos``; the pipeline adds ``official_split``
(train/val/test words; pyiqa's ``split`` column carries the same split as codes) and ``flive_official.pkl``.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import List, Set

import numpy as np
import pandas as pd

from ...utils.errors import DataError
from .label_checks import scores
from .registry import Annotations, Preparer, register, require
from .user_files import read_csv

logger = logging.getLogger(__name__)

TITLE = "FLIVE"
EXPECTS = ("database/ holding labels_image.csv, labels=640_padded.csv, labels640.csv and the image "
           "folders (voc_emotic_ava/, blur_dataset/, EE371R/)")
TRAIN_VAL = ("database/labels=640_padded.csv", "database/labels<=640_padded.csv")
TEST = ("database/labels640.csv", "database/labels>640.csv")
TRUE, FALSE = {"true", "1", "1.0"}, {"false", "0", "0.0"}


def read(root: Path) -> Annotations:
    path = require(root, "database/labels_image.csv", TITLE, EXPECTS)
    raw = _read_csv(path, ["name", "mos"])
    lines = [f"line {i + 2} ({n})" for i, n in enumerate(raw["name"])]
    mos = scores(raw["mos"], lines, "mos", f"{TITLE}: '{path}'")
    train_val_path = _either(root, TRAIN_VAL)
    train_val = _read_csv(train_val_path, ["name_image", "is_valid"])
    test = set(_read_csv(_either(root, TEST), ["name_image"])["name_image"])
    valid = set(train_val["name_image"][_flags(train_val["is_valid"], train_val_path)])
    _warn_unknown(raw["name"], test | set(train_val["name_image"]))
    official = pd.Series(np.where(raw["name"].isin(test), "test",
                                  np.where(raw["name"].isin(valid), "val", "train")), dtype=object)
    return Annotations(pd.DataFrame({"img_name": raw["name"], "mos": mos}), official_split=official,
                       origins=[f"'{path}' {line}" for line in lines])


def _either(root: Path, names: tuple) -> Path:
    """The first of ``names`` under ``root``; DataError naming the first (the usual name) otherwise."""
    for name in names:
        if (Path(root) / name).is_file():
            return Path(root) / name
    return require(root, names[0], TITLE, EXPECTS)


def _read_csv(path: Path, need: List[str]) -> pd.DataFrame:
    raw = read_csv(path, f"{TITLE} annotations", dtype=str, keep_default_na=False)
    missing = [c for c in need if c not in raw.columns]
    if missing:
        raise DataError(f"{TITLE}: '{path}' has no column(s) {missing}; found {list(raw.columns)}")
    return raw


def _flags(values: pd.Series, path: Path) -> np.ndarray:
    """``is_valid`` cells (True/False as pandas writes them, or 1/0) as booleans."""
    text = values.str.strip().str.lower()
    bad = ~text.isin(TRUE | FALSE)
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise DataError(f"{TITLE}: '{path}' line {row + 2}: is_valid {values[row]!r} is not True/False")
    return text.isin(TRUE).to_numpy()


def _warn_unknown(names: pd.Series, listed: Set[str]) -> None:
    """Split-list images missing from labels_image.csv: the lists do not match the labels."""
    unknown = sorted(listed - set(names))
    if unknown:
        logger.warning("%s: %d image(s) of the split lists are not in labels_image.csv (ignored), e.g. %s",
                       TITLE, len(unknown), unknown[:5])


register(Preparer(name="flive", title=TITLE, meta_file="meta_info_FLIVEDataset.csv", image_dir="database",
                  expects=EXPECTS, read=read, mos_range=(0.0, 100.0), mos_column="mos", lower_better=False,
                  size=39810, marker="database/labels_image.csv"))
