"""AGIQA-1K (Zhang et al., 2023, arXiv 2303.12618): 1,080 AI-generated images (720 from DeepAI's Stable
Diffusion 2.0, 360 from DreamStudio's Stable Inpainting 1.0) with one perceptual quality score each.

Published layout (github.com/lcysyzxdxc/AGIQA-1k-Database): the annotation workbook
``AIGC_MOS_Zscore.xlsx`` (first sheet, header ``Image, Prompt, MOS``: image file name, prompt, normalised
MOS) and the images from the authors' ``file.zip`` in ``file/``. The name encodes the generation
settings, ``<model>_<main object>_<second object>_<place>_<style>.jpg`` (``deepai_3_7_0_1.jpg``), decoded
in the README. The repository also ships ``AIGC_all.csv`` (header ``Image,Score``, same names and scores,
no prompt); it is read when the workbook is absent. Despite the file name the MOS is on 0-5 (means of
ratings in 1/22 steps, about 0.1 to 5), higher = better.

pyiqa (IQA-PyTorch) publishes no meta CSV for this set, so ours uses pyiqa's no-reference layout
``img_name,mos`` (the release gives no std) and adds ``prompt`` (empty from ``AIGC_all.csv``), the
``generator`` (the name's prefix) and the four setting indices ``main_object, second_object, place, style``
parsed from the name (empty where a name does not follow the pattern: ``AIGC_all.csv`` lists
``dreamStudio_8_9_1_.jpg``).
No official split.
"""
from __future__ import annotations

from pathlib import Path
from typing import Tuple

import pandas as pd

from ...utils.errors import DataError
from .registry import Annotations, Preparer, register, require

TITLE = "AGIQA-1K"
WORKBOOK, SCORES_CSV = "AIGC_MOS_Zscore.xlsx", "AIGC_all.csv"
EXPECTS = (f"{WORKBOOK} (or the repository's {SCORES_CSV}) and file/ "
           f"(the images of file.zip: deepai_0_0_0_0.jpg ...)")
SETTINGS = ["main_object", "second_object", "place", "style"]
COLUMNS = ["img_name", "mos", "prompt", "generator"] + SETTINGS
NAME_PATTERN = r"^([A-Za-z]+)_(\d+)_(\d+)_(\d+)_(\d+)\.\w+$"


def _read_source(root: Path) -> Tuple[Path, pd.DataFrame, str]:
    """The workbook (preferred) or the CSV, as text cells; plus the name of its score column."""
    if not (Path(root) / WORKBOOK).exists() and (Path(root) / SCORES_CSV).exists():
        path = Path(root) / SCORES_CSV
        raw, need, score = pd.read_csv(path, dtype=str, keep_default_na=False), ["Image", "Score"], "Score"
    else:
        path = require(root, WORKBOOK, TITLE, EXPECTS)
        raw = pd.read_excel(path, sheet_name=0, dtype=str, engine="openpyxl").fillna("")
        need, score = ["Image", "Prompt", "MOS"], "MOS"
    if not set(need) <= set(raw.columns):
        raise DataError(f"{TITLE}: '{path}' must have the columns {need}, found {list(raw.columns)}")
    return path, raw, score


def read(root: Path) -> Annotations:
    path, raw, score = _read_source(root)
    names = raw["Image"].astype(str).str.strip()
    mos = pd.to_numeric(raw[score], errors="coerce")
    if mos.isna().any():
        row = int(mos.isna().to_numpy().nonzero()[0][0])
        raise DataError(f"{TITLE}: '{path}' row {row + 2}: {score} {raw[score][row]!r} is not a number")
    parts = names.str.extract(NAME_PATTERN).fillna("")
    table = pd.DataFrame({"img_name": names, "mos": mos,
                          "prompt": raw["Prompt"] if "Prompt" in raw.columns else "",
                          "generator": names.str.split("_", n=1).str[0]})
    for i, column in enumerate(SETTINGS, start=1):
        table[column] = parts[i]
    return Annotations(table[COLUMNS])


register(Preparer(name="agiqa1k", title=TITLE, meta_file="meta_info_AGIQA1KDataset.csv", image_dir="file",
                  expects=EXPECTS, read=read, mos_range=(0.0, 5.0), mos_column="mos", lower_better=False,
                  size=1080))
