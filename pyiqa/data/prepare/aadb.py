"""AADB (Kong et al., ECCV 2016): aesthetic scores and 11 attributes of Flickr photos.

Published layout (the authors' Google Drive release): ``imgListFiles_label/`` with, for each part of the
official split, ``imgList<Part>Regression_score.txt`` and one ``imgList<Part>Regression_<attribute>.txt``
per attribute (``<image name> <value>`` per line, space-separated, no header); the parts are ``Train``
(8,458 images), ``Validation`` (500) and ``TestNew`` (the 1,000 test images with the re-collected scores
everyone reports; the older ``Test`` lists are not read). The images, under their Flickr names
(``farm1_255_19452343093_8ee7e5e375_b.jpg``), are in ``datasetImages_originalSize/`` (all 9,958,
test included; ``AADB_newtest_originalSize.zip`` repeats the test images under the same names, and
``datasetImages_warp256/`` holds 256x256 warped copies, also under the same names). The paper speaks of
10,000 images; the label lists hold 9,958.

The score is the mean of the raters' 1-5 ratings mapped to [0, 1], higher = better; attributes are in
[-1, 1]. pyiqa has no AADB meta CSV; ours is ``img_name, mos`` (the GeneralNRDataset layout), then the
attributes under the release's names (``BalacingElements`` [sic], ``ColorHarmony``, ... ; an attribute
whose three files are not all there is left out), and the pipeline adds ``official_split``
(train/val/test words) and ``aadb_official.pkl``.
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import pandas as pd

from ...utils.errors import DataError
from .registry import Annotations, Preparer, register, require

logger = logging.getLogger(__name__)

TITLE = "AADB"
LABELS = "imgListFiles_label"
EXPECTS = (f"{LABELS}/ (imgListTrainRegression_score.txt, imgListValidationRegression_score.txt, "
           "imgListTestNewRegression_score.txt, attribute lists) and datasetImages_originalSize/")
PARTS = {"train": "imgListTrainRegression", "val": "imgListValidationRegression",
         "test": "imgListTestNewRegression"}
ATTRIBUTES = ("BalacingElements", "ColorHarmony", "Content", "DoF", "Light", "MotionBlur", "Object",
              "Repetition", "RuleOfThirds", "Symmetry", "VividColor")


def read(root: Path) -> Annotations:
    parts = {part: _read_list(require(root, f"{LABELS}/{prefix}_score.txt", TITLE, EXPECTS))
             for part, prefix in PARTS.items()}
    table = pd.concat([pd.DataFrame({"img_name": names, "mos": values})
                       for names, values in parts.values()], ignore_index=True)
    official = pd.Series(np.repeat(list(parts), [len(names) for names, _ in parts.values()]))
    for attribute in ATTRIBUTES:
        files = [Path(root) / LABELS / f"{prefix}_{attribute}.txt" for prefix in PARTS.values()]
        if not all(f.is_file() for f in files):
            logger.info("%s: attribute '%s' left out: %s not found", TITLE, attribute,
                        [str(f) for f in files if not f.is_file()])
            continue
        values: Dict[str, float] = {}
        for f in files:
            values.update(zip(*_read_list(f)))
        table[attribute] = table["img_name"].map(values)
    return Annotations(table, official_split=official)


def _read_list(path: Path) -> Tuple[List[str], np.ndarray]:
    """(image names, values) of one ``<name> <value>`` list; DataError naming the line otherwise."""
    try:
        raw = pd.read_csv(path, sep=r"\s+", header=None, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError as exc:
        raise DataError(f"{TITLE}: '{path}' is empty") from exc
    except pd.errors.ParserError as exc:
        raise DataError(f"{TITLE}: '{path}' must hold '<image name> <value>' per line: {exc}") from exc
    if raw.shape[1] != 2:
        raise DataError(f"{TITLE}: '{path}' has {raw.shape[1]} fields per line; expected 2 "
                        f"(<image name> <value>)")
    values = pd.to_numeric(raw[1], errors="coerce")
    if values.isna().any():
        row = int(np.flatnonzero(values.isna())[0])
        raise DataError(f"{TITLE}: '{path}' line {row + 1}: value {raw[1][row]!r} of image "
                        f"{raw[0][row]!r} is not a number")
    return raw[0].tolist(), values.to_numpy(dtype=np.float64)


register(Preparer(name="aadb", title=TITLE, meta_file="meta_info_AADBDataset.csv",
                  image_dir="datasetImages_originalSize", expects=EXPECTS, read=read, mos_range=(0.0, 1.0),
                  mos_column="mos", lower_better=False, size=9958))
