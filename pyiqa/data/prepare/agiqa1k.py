"""AGIQA-1K (Zhang et al., 2023, arXiv 2303.12618): 1,080 AI-generated images (720 from DeepAI's Stable
Diffusion 2.0, 360 from DreamStudio's Stable Inpainting 1.0) with one perceptual quality score each.

Published layout (github.com/lcysyzxdxc/AGIQA-1k-Database): the images of the authors' ``file.zip`` in
``file/`` and the labels in ``AIGC_MOS_Zscore.xlsx`` (sheet ``Sheet1``, header ``Image, Prompt, MOS``:
image name ``<model>_<main object>_<second object>_<place>_<style>.jpg``, the prompt, the normalised MOS,
0 to 5, higher = better). The repository's README documents this workbook as the database's labels, and it
was released with the paper (March 2023); it is the file we read, and the only one.

The repository also holds ``AIGC_all.csv`` (header ``Image,Score``, added in May 2023 without mention in
the README). It is a different labelling, not a copy: over the names both list, its scores differ from
the workbook's by up to 1.44 (Pearson 0.84); they are raw means in steps of 1/22 on 0.09-5, not
normalised. It is never read, and never mixed with the workbook.

The workbook's real defects, handled here rather than refused: its last row repeats
``dreamStudio_8_9_1_1.jpg`` (MOS 2.084; the row in the workbook's name order says 0.441), and
``dreamStudio_8_5_0_0.jpg`` has no row. A repeated name keeps its first row, the one in the workbook's
name order (the repeat is appended after the last name, so which image it meant cannot be told), and the
dropped rows are logged by name, row and MOS. Images under ``file/`` without a row are logged and not used.

pyiqa (IQA-PyTorch) publishes no meta CSV for this set, so ours uses pyiqa's no-reference layout
``img_name,mos`` (the release gives no std) and adds ``prompt``, the ``generator`` (the name's prefix),
the four setting indices ``main_object, second_object, place, style`` parsed from the name, and
``label_file`` (the workbook's name on every row, so the CSV says which labels it holds). No official split.
"""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from ...utils.errors import DataError
from .label_checks import scores
from .registry import Annotations, Preparer, read_sheet, register, require

logger = logging.getLogger(__name__)

TITLE = "AGIQA-1K"
WORKBOOK, SHEET, SCORES_CSV = "AIGC_MOS_Zscore.xlsx", "Sheet1", "AIGC_all.csv"
HEADER = ["Image", "Prompt", "MOS"]
IMAGE_DIR = "file"
EXPECTS = f"{WORKBOOK} and {IMAGE_DIR}/ (the images of file.zip: deepai_0_0_0_0.jpg ...)"
SETTINGS = ["main_object", "second_object", "place", "style"]
COLUMNS = ["img_name", "mos", "prompt", "generator"] + SETTINGS + ["label_file"]
NAME_PATTERN = r"^([A-Za-z]+)_(\d+)_(\d+)_(\d+)_(\d+)\.\w+$"


def read(root: Path) -> Annotations:
    root = Path(root)
    if not (root / WORKBOOK).exists() and (root / SCORES_CSV).exists():
        raise DataError(f"{TITLE}: '{root / WORKBOOK}' is missing; only '{SCORES_CSV}' is there, which holds "
                        f"different scores (raw means, not the normalised MOS of the paper) and is not read. "
                        f"Download {WORKBOOK} from github.com/lcysyzxdxc/AGIQA-1k-Database")
    path = require(root, WORKBOOK, TITLE, EXPECTS)
    raw = read_sheet(path, SHEET, TITLE, dtype=str, keep_default_na=False)
    raw.columns = [str(c).strip() for c in raw.columns]
    if list(raw.columns[:3]) != HEADER:
        raise DataError(f"{TITLE}: '{path}' sheet '{SHEET}' must start with the columns {HEADER}, "
                        f"found {list(raw.columns)}")
    ignored = f"; '{SCORES_CSV}' beside it is not read (different scores)" if (root / SCORES_CSV).exists() else ""
    logger.info("%s: labels from '%s' (sheet %s)%s", TITLE, path, SHEET, ignored)
    origins = [f"row {i + 2}" for i in range(len(raw))]
    names = raw["Image"].str.strip()
    mos = scores(raw["MOS"], origins, "MOS", f"{TITLE}: '{path}'")
    table = pd.DataFrame({"img_name": names, "mos": mos, "prompt": raw["Prompt"],
                          "generator": names.str.split("_", n=1).str[0]})
    parts = names.str.extract(NAME_PATTERN).fillna("")
    for i, column in enumerate(SETTINGS, start=1):
        table[column] = parts[i]
    table["label_file"] = WORKBOOK
    keep = _first_of_repeats(table, origins)
    _report_unlabelled(root / IMAGE_DIR, set(names))
    return Annotations(table[keep].reset_index(drop=True)[COLUMNS],
                       origins=[o for o, k in zip(origins, keep) if k])


def _first_of_repeats(table: pd.DataFrame, origins: list) -> pd.Series:
    """Keep mask: the first row of every image name. Dropped repeats are logged with their MOS."""
    repeated = table["img_name"].duplicated(keep="first")
    for name in table["img_name"][repeated].unique():
        rows = [(origins[i], table["mos"][i]) for i in (table["img_name"] == name).to_numpy().nonzero()[0]]
        listed = "; ".join(f"{o}: MOS {m:.4g}" for o, m in rows)
        logger.warning("%s: '%s' is listed %d times in %s (%s); kept %s, the row in the workbook's name "
                       "order, and left out %s (appended after the last name: which image it meant cannot "
                       "be told)", TITLE, name, len(rows), WORKBOOK, listed, rows[0][0],
                       ", ".join(o for o, _ in rows[1:]))
    return ~repeated


def _report_unlabelled(folder: Path, listed: set) -> None:
    """Log the images of ``folder`` that the workbook has no row for (the release lacks one)."""
    if not folder.is_dir():
        return
    unlabelled = sorted(p.name for p in folder.iterdir() if p.is_file() and p.name not in listed
                        and p.suffix.lower() in {".jpg", ".jpeg", ".png"})
    if unlabelled:
        logger.warning("%s: %d image(s) under '%s' have no row in %s and are not used: %s", TITLE,
                       len(unlabelled), folder, WORKBOOK, unlabelled[:10])


register(Preparer(name="agiqa1k", title=TITLE, meta_file="meta_info_AGIQA1KDataset.csv", image_dir=IMAGE_DIR,
                  expects=EXPECTS, read=read, mos_range=(0.0, 5.0), mos_column="mos", lower_better=False,
                  size=1080, marker=WORKBOOK))
