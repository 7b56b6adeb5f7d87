"""SPAQ, Smartphone Photography Attribute and Quality (Fang et al., CVPR 2020): 11,125 photos from 66 phones.

Published layout: ``Annotations/MOS and Image attribute scores.xlsx`` (first sheet, header ``Image name,
MOS,Brightness,Colorfulness,Contrast,Noisiness,Sharpness``; MOS and the five attribute scores on 0-100,
higher = better), ``Annotations/Scene category labels.xlsx`` (``Image name`` + 9 scene columns Animal ...
Others), ``Annotations/EXIF_tags.xlsx`` (``Image name``, Focal length, F-number, Exposure time, ISO,
Brightness, Flash and two time-of-day columns), all in the same row order, and the photos in
``TestImage/`` (``00001.jpg`` ...) at full camera resolution (pyiqa's configs resize them, see
``options/train/UniQA/spaq.yml``).

pyiqa's CSV is the MOS sheet's columns, then the scene columns, then the EXIF columns with the last two
renamed ``Time0, Time1``; its header repeats ``Brightness`` (attribute score, then EXIF brightness), which
pandas reads back as ``Brightness.1``: we write that name for the EXIF one so both files read the same.
Only the MOS workbook is required; the scene and EXIF columns are added when their workbooks are there.

Checked against IQA-PyTorch's ``meta_info_SPAQDataset.csv`` (written by its script from the real
workbooks; tests/fixtures/real/spaq): same header (but ``Brightness.1``), rows and values. The workbooks
themselves could not be read (in no public repository): their sheet names are not known, so the first
sheet is read, and a wrong header lists the sheets found.
"""
from __future__ import annotations

from pathlib import Path
from typing import List

import pandas as pd

from ...utils.errors import DataError
from .label_checks import scores
from .registry import Annotations, Preparer, read_sheet, register, require

TITLE = "SPAQ"
NAME = "Image name"
MOS_FILE = "Annotations/MOS and Image attribute scores.xlsx"
SCENE_FILE = "Annotations/Scene category labels.xlsx"
EXIF_FILE = "Annotations/EXIF_tags.xlsx"
EXPECTS = (f"'{MOS_FILE}' (optionally 'Scene category labels.xlsx' and 'EXIF_tags.xlsx' beside it) and "
           "TestImage/ (00001.jpg ...)")


def _sheet(path: Path) -> pd.DataFrame:
    """First sheet of ``path``, 'Image name' as stripped text; DataError when unreadable or lacking it."""
    # only empty cells are missing: a cell reading 'n/a' stays text, to be reported verbatim
    sheet = read_sheet(path, None, TITLE, dtype={NAME: str}, keep_default_na=False, na_values=[""])
    sheet.columns = [str(c).strip() for c in sheet.columns]
    if not len(sheet.columns) or sheet.columns[0] != NAME:
        sheets = pd.ExcelFile(path, engine="openpyxl").sheet_names
        raise DataError(f"{TITLE}: the first sheet of '{path}' must start with column '{NAME}', found "
                        f"{list(sheet.columns)} (sheets found: {sheets})")
    names = sheet[NAME].fillna("").astype(str).str.strip()
    if (names == "").any():
        row = int((names == "").to_numpy().nonzero()[0][0])
        raise DataError(f"{TITLE}: '{path}' row {row + 2}: empty '{NAME}'")
    sheet[NAME] = names
    return sheet


def _scores(root: Path) -> pd.DataFrame:
    path = require(root, MOS_FILE, TITLE, EXPECTS)
    sheet = _sheet(path)
    if len(sheet.columns) < 2 or sheet.columns[1] != "MOS":
        raise DataError(f"{TITLE}: '{path}' must have 'MOS' as its second column, found {list(sheet.columns)}")
    rows = [f"row {i + 2} ({n})" for i, n in enumerate(sheet[NAME])]
    sheet["MOS"] = scores(sheet["MOS"], rows, "MOS", f"{TITLE}: '{path}'")
    return sheet


def _extra(root: Path, relative: str, names: pd.Series, taken: List[str]) -> pd.DataFrame:
    """Columns of an optional workbook after 'Image name', rows checked against the MOS sheet's."""
    path = Path(root) / relative
    sheet = _sheet(path)
    if sheet[NAME].tolist() != names.tolist():
        row = next((i for i, (a, b) in enumerate(zip(sheet[NAME], names)) if a != b),
                   min(len(sheet), len(names)))
        raise DataError(f"{TITLE}: '{path}' does not list the images of '{MOS_FILE}' in the same order "
                        f"({len(sheet)} vs {len(names)} rows, first difference at row {row + 2})")
    extra = sheet.drop(columns=[NAME])
    if relative == EXIF_FILE and len(extra.columns) >= 2:
        extra.columns = list(extra.columns[:-2]) + ["Time0", "Time1"]
    extra.columns = [f"{c}.1" if c in taken else c for c in extra.columns]
    return extra


def read(root: Path) -> Annotations:
    table = _scores(root)
    for relative in (SCENE_FILE, EXIF_FILE):
        if (Path(root) / relative).is_file():
            table = pd.concat([table, _extra(root, relative, table[NAME], list(table.columns))], axis=1)
    path = Path(root) / MOS_FILE
    return Annotations(table, origins=[f"'{path}' row {i + 2}" for i in range(len(table))])


register(Preparer(name="spaq", title=TITLE, meta_file="meta_info_SPAQDataset.csv", image_dir="TestImage",
                  expects=EXPECTS, read=read, mos_range=(0.0, 100.0), mos_column="MOS", image_column=NAME,
                  lower_better=False, size=11125, marker=MOS_FILE))
