"""CSIQ (Larson & Chandler, 2010): 866 images, 30 references x 6 distortions x 4-5 levels.

Published layout: ``csiq.DMOS.xlsx``, whose sheet ``all_by_image`` holds a header row (row 4 in the
release, columns D-I) ``image, dst_idx, dst_type, dst_lev, dmos_std, dmos`` and one row per distorted
image below it (``image`` is the reference's name, e.g. ``1600`` or ``aerial_city``; ``dst_type`` is one
of ``noise, jpeg, jpeg 2000, fnoise, blur, contrast``); ``src_imgs/`` (``1600.png``) and
``dst_imgs/<type>/`` (``dst_imgs/awgn/1600.AWGN.1.png``, ``jpeg2000/1600.jpeg2000.1.png``,
``blur/1600.BLUR.1.png``, ...). The DMOS is on 0-1, lower = better. The other sheets (per distortion,
raw ratings) are not read; the header row is found by its cell values, not by its position.

pyiqa's CSV is ``ref_name,dist_name,dmos`` with the flat name ``1600.AWGN.1.png`` (pyiqa's own copy puts
every distorted image in one folder). Our image check needs the file where the release puts it, so
``dist_name`` is ``awgn/1600.AWGN.1.png``, relative to ``dst_imgs/`` (the config's dataroot_target);
``ref_name`` is pyiqa's (``1600.png``, relative to ``src_imgs/``). We add ``std`` (``dmos_std``), the
distortion folder and the level. Rows come in IQA-PyTorch's order: by distortion type (noise, jpeg,
jpeg 2000, fnoise, blur, contrast: ``AWGN`` ... ``contrast``), then images as the sheet lists them, then
level, so row ``i`` is the image of row ``i`` of IQA-PyTorch's ``meta_info_CSIQDataset.csv``.

Layout from documentation, not yet checked on a real file (``csiq.DMOS.xlsx`` was not found in any public
repository; a public code comment quoting its rows gives the header ``image dst_idx dst_type dst_lev
dmos_std dmos`` and rows like ``1600 1 noise 1 0.061 0.062``). IQA-PyTorch's published meta file (866 rows,
30 references, DMOS 0-1; 150 images per type, 116 for contrast) agrees with the names and types above.
A dmos or dmos_std that is empty, text, ``inf`` or negative is an error naming sheet row and value; a
renamed sheet is an error listing the sheets found; an image listed twice is kept once when its scores
agree, else an error.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from ...utils.errors import DataError
from .label_checks import drop_repeats, scores
from .registry import Annotations, Preparer, read_sheet, register, require

TITLE = "CSIQ"
EXPECTS = "csiq.DMOS.xlsx, src_imgs/ and dst_imgs/<type>/ (awgn, blur, contrast, fnoise, jpeg, jpeg2000)"
SHEET = "all_by_image"
HEADER = ["image", "dst_type", "dst_lev", "dmos_std", "dmos"]
#: dst_type in the spreadsheet -> (folder under dst_imgs/, the type as spelled in the file names).
TYPES = {"noise": ("awgn", "AWGN"), "jpeg": ("jpeg", "JPEG"), "jpeg 2000": ("jpeg2000", "jpeg2000"),
         "fnoise": ("fnoise", "fnoise"), "blur": ("blur", "BLUR"), "contrast": ("contrast", "contrast")}


def read(root: Path) -> Annotations:
    path = require(root, "csiq.DMOS.xlsx", TITLE, EXPECTS)
    raw = _read_sheet(path)
    rows = [f"row {index + 1}" for index in raw.index]
    where = f"{TITLE}: '{path}' sheet '{SHEET}'"
    raw["dmos"] = scores(raw["dmos"], rows, "dmos", where)
    raw["dmos_std"] = scores(raw["dmos_std"], rows, "dmos_std", where)
    table = pd.DataFrame([_row(cells, f"{where} {row}") for row, (_, cells) in zip(rows, raw.iterrows())],
                         columns=["ref_name", "dist_name", "dmos", "std", "distortion_type", "distortion_level"])
    if table.empty:
        raise DataError(f"{where} lists no images below its header")
    table = drop_repeats(table, "dist_name", ["dmos", "std"], rows, where)
    order = table["distortion_type"].map({folder: i for i, (folder, _) in enumerate(TYPES.values())})
    table = table.iloc[order.argsort(kind="stable").to_numpy()].reset_index(drop=True)
    return Annotations(table, reference_column="ref_name")


def _read_sheet(path: Path) -> pd.DataFrame:
    """The non-blank rows below the header, named by it; index = spreadsheet row number - 1."""
    cells = read_sheet(path, SHEET, TITLE, header=None, dtype=object, keep_default_na=False,
                       na_values=[""])  # "n/a" stays text
    labels = cells.apply(lambda col: col.map(lambda v: str(v).strip().lower() if isinstance(v, str) else v))
    hits = [i for i in range(len(labels)) if set(HEADER) <= set(labels.iloc[i].tolist())]
    if not hits:
        raise DataError(f"{TITLE}: sheet '{SHEET}' of '{path}' has no header row with the columns {HEADER}")
    header = labels.iloc[hits[0]].tolist()
    body = cells.iloc[hits[0] + 1:, [header.index(name) for name in HEADER]]
    body.columns = HEADER
    return body[body.notna().any(axis=1)].copy()  # not the blank padding rows of the sheet


def _row(cells: pd.Series, where: str) -> tuple:
    """One table row from one spreadsheet row (scores already checked); DataError naming the row."""
    image = _text(cells["image"])
    kind = _text(cells["dst_type"]).lower()
    if not image:
        raise DataError(f"{where}: empty image name")
    if kind not in TYPES:
        raise DataError(f"{where}: dst_type {cells['dst_type']!r} is not one of {sorted(TYPES)}")
    level = pd.to_numeric(pd.Series([cells["dst_lev"]]), errors="coerce")[0]
    if pd.isna(level) or int(level) != level or level < 1:
        raise DataError(f"{where}: dst_lev {cells['dst_lev']!r} is not a level 1, 2, ...")
    level = int(level)
    folder, token = TYPES[kind]
    return f"{image}.png", f"{folder}/{image}.{token}.{level}.png", cells["dmos"], cells["dmos_std"], folder, level


def _text(value: Any) -> str:
    """A cell as text: the reference ``1600`` is a number in the spreadsheet."""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return "" if pd.isna(value) else str(value).strip()


register(Preparer(name="csiq", title=TITLE, meta_file="meta_info_CSIQDataset.csv", image_dir="dst_imgs",
                  expects=EXPECTS, read=read, mos_range=(0.0, 1.0), mos_column="dmos",
                  image_column="dist_name", lower_better=True, size=866, marker="csiq.DMOS.xlsx"))
