"""AVA (Murray et al., CVPR 2012): aesthetic vote histograms of ~255.5k dpchallenge.com photos.

Published layout (the "AVA_dataset" package; images downloaded separately as ``images/<id>.jpg``):

* ``AVA.txt``: one line per image, 15 space-separated integers: index, image id, ten vote counts for
  the scores 1..10, two semantic tag ids (0 = no tag; names in ``tags.txt``) and a challenge id (names in
  ``challenges.txt``). 255,530 lines.
* ``aesthetics_image_lists/generic_test.jpgl``: one image id per line, 20,000 ids: the standard test set.
  Every other image of ``AVA.txt`` trains (about 235k): the split of pyiqa and the AVA literature.
  ``generic_ls_train.jpgl`` is not that remainder but the original paper's "large-scale" training subset
  (also 20,000 ids, none in the test list); it is not read.

pyiqa's ``meta_info_AVADataset.csv`` is ``img_name, MOS, c1..c10, semantic_tag1, semantic_tag2,
official split, ILGnet split`` with MOS = mean vote (1-10, higher = better; pyiqa rounds it to three
digits, we keep it exact) and split codes 0 train / 2 test. We write the same leading columns, then
``official_split`` (0 train, 1 val, 2 test: what :class:`~pyiqa.data.ava_dataset.AVADataset` reads when
no split file is given) and ``challenge_id``; the ILGnet split needs ILGnet's own lists and is left out.
Like pyiqa (``AVADataset`` labels are MOS / 10) the configs use ``mos_range: [0, 10]``.

AVA defines only train and test. pyiqa's ``ava_official_ilgnet.pkl`` holds out a random 5% of the
training images as ``val`` and ``AVADataset`` keeps the last 2,000 of them for validation (the rest
trains). We hold out the same amount directly: ``val`` = 2,000 training images (or 5% of them when that
is fewer) drawn with seed 123, so the ``official_split`` column and ``ava_official.pkl`` give the same
train/val/test parts (test = ``generic_test.jpgl``, never touched). Lines whose ten vote counts are all
zero have no MOS and are left out with a warning.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import List, Set

import numpy as np
import pandas as pd

from ...utils.errors import DataError
from .registry import Annotations, Preparer, register, require
from .split_maker import SEED
from .user_files import decode_text, read_bytes, read_csv

logger = logging.getLogger(__name__)

TITLE = "AVA"
EXPECTS = ("AVA.txt, aesthetics_image_lists/generic_test.jpgl and images/ (<image id>.jpg); "
           "the AVA_dataset folder")
TEST_LIST = "aesthetics_image_lists/generic_test.jpgl"
VOTES = [f"c{i}" for i in range(1, 11)]
FIELDS = ["index", "image_id"] + VOTES + ["semantic_tag1", "semantic_tag2", "challenge_id"]
CODES = {"train": 0, "val": 1, "test": 2}
VAL_SIZE, VAL_SHARE = 2000, 0.05


def read(root: Path) -> Annotations:
    path = require(root, "AVA.txt", TITLE, EXPECTS)
    test_ids = _read_id_list(require(root, TEST_LIST, TITLE, EXPECTS))
    raw = _read_ava_txt(path)
    votes = raw[VOTES].to_numpy()
    totals = votes.sum(axis=1)
    if (totals == 0).any():
        lines = (np.flatnonzero(totals == 0) + 1).tolist()
        logger.warning("%s: %d line(s) of '%s' have no votes and are left out: lines %s", TITLE,
                       len(lines), path, lines[:10])
        raw, votes, totals = raw[totals > 0].reset_index(drop=True), votes[totals > 0], totals[totals > 0]
    official = _official_split(raw["image_id"], test_ids)
    table = pd.DataFrame({"img_name": raw["image_id"] + ".jpg",
                          "MOS": (votes * np.arange(1, 11)).sum(axis=1) / totals})
    for column in VOTES + ["semantic_tag1", "semantic_tag2"]:
        table[column] = raw[column]
    table["official_split"] = official.map(CODES)
    table["challenge_id"] = raw["challenge_id"]
    return Annotations(table, official_split=official)


def _read_ava_txt(path: Path) -> pd.DataFrame:
    """AVA.txt as integers, one DataError naming the line for a wrong field count or a non-integer."""
    raw = read_csv(path, f"{TITLE} annotations ({len(FIELDS)} space-separated fields per line)",
                   sep=r"\s+", header=None, dtype=str, keep_default_na=False)
    if raw.shape[1] != len(FIELDS):
        raise DataError(f"{TITLE}: '{path}' has {raw.shape[1]} fields per line; expected {len(FIELDS)} "
                        f"(index, image id, 10 vote counts, 2 tag ids, challenge id)")
    raw.columns = FIELDS
    numbers = raw.drop(columns="image_id").apply(pd.to_numeric, errors="coerce")
    bad = numbers.isna().to_numpy() | (numbers.to_numpy() < 0) | (numbers.to_numpy() % 1 != 0)
    if bad.any():
        row, col = (int(v[0]) for v in np.nonzero(bad))
        name = numbers.columns[col]
        raise DataError(f"{TITLE}: '{path}' line {row + 1}: {name} {raw[name][row]!r} is not a "
                        f"non-negative integer")
    ids = raw["image_id"]
    if not ids.str.fullmatch(r"\d+").all():
        row = int(np.flatnonzero(~ids.str.fullmatch(r"\d+"))[0])
        raise DataError(f"{TITLE}: '{path}' line {row + 1}: image id {ids[row]!r} is not a number")
    out = numbers.astype(np.int64)
    out.insert(1, "image_id", ids)
    return out


def _read_id_list(path: Path) -> Set[str]:
    text = decode_text(read_bytes(path, f"{TITLE} test list"), path, f"{TITLE} test list")
    ids: List[str] = [line.strip() for line in text.splitlines()]
    for number, value in enumerate(ids, start=1):
        if value and not value.isdigit():
            raise DataError(f"{TITLE}: '{path}' line {number}: {value!r} is not an image id")
    return {v for v in ids if v}


def _official_split(image_ids: pd.Series, test_ids: Set[str]) -> pd.Series:
    """'test' for the listed ids; VAL_SIZE (or VAL_SHARE of the rest, if fewer) seeded 'val'; 'train'."""
    split = pd.Series(np.where(image_ids.isin(test_ids), "test", "train"), dtype=object)
    train = np.flatnonzero(split == "train")
    size = min(VAL_SIZE, math.ceil(VAL_SHARE * len(train)))
    split[np.random.default_rng(SEED).choice(train, size=size, replace=False)] = "val"
    return split


register(Preparer(name="ava", title=TITLE, meta_file="meta_info_AVADataset.csv", image_dir="images",
                  expects=EXPECTS, read=read, mos_range=(0.0, 10.0), mos_column="MOS", lower_better=False,
                  size=255530, marker="AVA.txt"))
