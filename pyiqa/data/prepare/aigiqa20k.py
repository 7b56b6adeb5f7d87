"""AIGIQA-20K (Li et al., CVPR Workshops 2024; the NTIRE 2024 AIGC quality challenge, track 1): 20,000
images from 15 text-to-image models, one MOS each that mixes perceptual quality and prompt alignment.

Published layout (the challenge release, ModelScope ``lcysyzxdxc/AIGCQA-30K-Image``), checked on the real
workbooks vendored in github.com/woshidandan/Champion-Solution-for-CVPR-NTIRE-2024-Quality-Assessment-on-AIGC
(``data/AIGCQA-30K-Image/``, commit a2c5f225): ``info_train.xlsx`` (one sheet, ``Sheet1``, header
``name, prompt, mos``; 14,000 rows, MOS 0.1223 to 4.9814, higher = better, on a 0-5 scale) and the images
in ``train/`` (``DALLE2_0000.png``: ``<generator>_<index>.png``); ``info_val.xlsx`` (2,000 rows) and
``info_test.xlsx`` (4,000 rows) with ``val/`` and ``test/``, whose workbooks hold ``name, prompt`` only:
the challenge kept those scores hidden. Together 7:1:2, the split of the AIGIQA-20K paper.

What we build: the labelled rows (``img_name`` relative to ``--root``, e.g. ``train/DALLE2_0000.png``,
then ``mos, prompt, generator``). A val/test workbook that carries a ``mos`` column joins the table and the
authors' split becomes ``official_split``; one without scores is left out (logged by count), and the
benchmark is the 14,000 training images with our seeded splits, as the UniQA release's other sets.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import List, Optional

import pandas as pd

from ...utils.errors import DataError
from .label_checks import drop_repeats, scores
from .registry import Annotations, Preparer, register, require

logger = logging.getLogger(__name__)

TITLE = "AIGIQA-20K"
PARTS = ("train", "val", "test")  # workbook info_<part>.xlsx, image folder <part>/
SHEET = "Sheet1"
EXPECTS = "info_train.xlsx and train/ (optionally info_val.xlsx + val/, info_test.xlsx + test/)"
COLUMNS = ["img_name", "mos", "prompt", "generator"]


def _sheet(path: Path) -> pd.DataFrame:
    """The workbook's sheet ``Sheet1`` (the published name); cells as typed, no text read as NaN."""
    try:
        sheets = pd.read_excel(path, sheet_name=None, dtype=object, keep_default_na=False, engine="openpyxl")
    except Exception as exc:  # a corrupt or non-xlsx file: say which one
        raise DataError(f"{TITLE}: cannot read workbook '{path}': {exc}") from exc
    if SHEET not in sheets:
        raise DataError(f"{TITLE}: workbook '{path}' has no sheet '{SHEET}' (the published one's name); "
                        f"sheets found: {list(sheets)}. Rename the sheet that holds the labels to '{SHEET}'")
    return sheets[SHEET]


def _part(root: Path, part: str) -> Optional[pd.DataFrame]:
    """One workbook's labelled rows, or None when it holds no ``mos`` column (a challenge val/test file)."""
    name = f"info_{part}.xlsx"
    path = require(root, name, TITLE, EXPECTS) if part == "train" else Path(root) / name
    if not path.exists():
        return None
    raw = _sheet(path)
    raw.columns = [str(c).strip() for c in raw.columns]
    need = ["name", "prompt", "mos"] if part == "train" else ["name", "prompt"]
    if not set(need) <= set(raw.columns):
        raise DataError(f"{TITLE}: '{path}' must have the columns {need}, found {list(raw.columns)}")
    if "mos" not in raw.columns:
        logger.info("%s: '%s' lists %d images without scores (the challenge kept them hidden); left out",
                    TITLE, path, len(raw))
        return None
    where = f"{TITLE}: '{path}'"
    lines = [f"row {i + 2}" for i in range(len(raw))]  # Excel rows: the header is row 1
    names = raw["name"].astype(str).str.strip()
    table = pd.DataFrame({"img_name": part + "/" + names, "mos": scores(raw["mos"], lines, "mos", where),
                          "prompt": raw["prompt"].fillna("").astype(str),
                          "generator": names.str.rsplit("_", n=1).str[0]})
    table = drop_repeats(table, "img_name", ["mos"], lines, where)
    table["split"] = part
    return table


def read(root: Path) -> Annotations:
    parts: List[pd.DataFrame] = [t for t in (_part(root, p) for p in PARTS) if t is not None]
    table = pd.concat(parts, ignore_index=True)
    official = table["split"] if table["split"].nunique() > 1 else None
    return Annotations(table[COLUMNS], official_split=official)


register(Preparer(name="aigiqa20k", title=TITLE, meta_file="meta_info_AIGIQA20KDataset.csv", image_dir="",
                  expects=EXPECTS, read=read, mos_range=(0.0, 5.0), mos_column="mos", lower_better=False,
                  size=20000, marker="info_train.xlsx"))
