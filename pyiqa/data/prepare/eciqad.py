"""ECIQAD ("Perceptual Quality Assessment of Enhanced Colonoscopy Images: A Benchmark Dataset and an
Objective Method"): 300 low-light colonoscopy images, each enhanced by 8 low-light enhancement methods,
with one perceptual quality MOS per enhanced image (300 x 8 = 2,400, if every enhancement is rated).

Layout from documentation, not yet checked on a real file: we found no public copy of ECIQAD's annotation
file, nor a statement of its file name, columns or score scale (the UniQA and Gamma READMEs name the
dataset only). So we read the one CSV directly under ``--root`` that has an image column (``image``,
``image_name``, ``img_name``, ``name`` or ``filename``) and a ``mos``/``MOS`` column, and find each image by
name anywhere under ``--root``. Where the table also names the low-light source image (a column
``source``, ``ref_name``, ``reference`` or ``original``), the splits keep all enhancements of one source
on the same side; without it, each image is its own content (logged, as enhancements of one source then
cross the splits). The configs assume a 1-5 MOS, higher = better; the preparer warns with the observed
range when a score falls outside it.

What we build: ``img_name`` (relative to ``--root``), ``mos`` and, where given, ``ref_name``. No official
split.
"""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from .label_checks import drop_repeats, scores
from .registry import Annotations, Preparer, register
from .user_files import read_csv
from .undocumented import column, image_paths, table_with_columns

logger = logging.getLogger(__name__)

TITLE = "ECIQAD"
IMAGE_NAMES = ("image", "image_name", "img_name", "name", "filename")
MOS_NAMES = ("mos", "MOS")
SOURCE_NAMES = ("source", "ref_name", "reference", "original")
EXPECTS = (f"the ECIQAD score table (a CSV with an image column, one of {list(IMAGE_NAMES)}, and a mos "
           f"column) and the enhanced images it names, in any folder")
MOS_RANGE = (1.0, 5.0)


def read(root: Path) -> Annotations:
    path = table_with_columns(root, [IMAGE_NAMES, MOS_NAMES], TITLE, EXPECTS)
    raw = read_csv(path, f"{TITLE} annotations", dtype=str, keep_default_na=False)
    raw.columns = raw.columns.str.strip()
    image, mos = column(raw.columns, IMAGE_NAMES), column(raw.columns, MOS_NAMES)
    source = next((c for c in SOURCE_NAMES if c in raw.columns), None)
    where, lines = f"{TITLE}: '{path}'", [f"line {i + 2}" for i in range(len(raw))]
    located = image_paths(root, TITLE)
    names = raw[image].str.strip()
    table = pd.DataFrame({"img_name": [located.get(n, n) for n in names],
                          "mos": scores(raw[mos], lines, mos, where)})
    lo, hi = table["mos"].min(), table["mos"].max()
    if lo < MOS_RANGE[0] or hi > MOS_RANGE[1]:
        logger.warning("%s: %s spans %.4g to %.4g, outside the nominal %s of the configs; set their "
                       "mos_range to the scale of this release", where, mos, lo, hi, list(MOS_RANGE))
    if source is None:
        logger.warning("%s: no source-image column (%s): each image is its own content, so enhancements of "
                       "one low-light image may fall on both sides of a split", where, "/".join(SOURCE_NAMES))
    else:
        table["ref_name"] = raw[source].str.strip()
    table = drop_repeats(table, "img_name", ["mos"], lines, where)
    return Annotations(table, reference_column=None if source is None else "ref_name")


register(Preparer(name="eciqad", title=TITLE, meta_file="meta_info_ECIQADDataset.csv", image_dir="",
                  expects=EXPECTS, read=read, mos_range=MOS_RANGE, mos_column="mos", lower_better=False,
                  size=2400, scale_published=False))
