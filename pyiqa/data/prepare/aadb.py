"""AADB (Kong et al., ECCV 2016): aesthetic scores and 11 attributes of Flickr photos.

Published layout (the authors' Google Drive release, github.com/aimerykong/deepImageAestheticsAnalysis):
``imgListFiles_label/`` with, for each part of the official split, ``imgList<Part>Regression_score.txt``
and one ``imgList<Part>Regression_<attribute>.txt`` per attribute (``<image name> <value>`` per line,
space-separated, no header, as the authors' ``AADBstatistics.m`` reads them); the parts are ``Train``
(8,458 images), ``Validation`` (500) and ``TestNew`` (the 1,000 test images with the re-collected scores
everyone reports; the older ``Test`` lists are not read). The train and validation images, under their
Flickr names (``farm1_255_19452343093_8ee7e5e375_b.jpg``), are in ``datasetImages_originalSize/`` (the
README's "full-resolution training set"); the test images are in ``AADB_newtest_originalSize/`` (its
"full-resolution testing set", a separate archive), where their files may carry a 3-decimal score prefix
(``0.650_farm1_286_..._b.jpg``): either spelling is found. Test images found only in
``datasetImages_originalSize/`` are used from there. The paper speaks of 10,000 images; the lists hold 9,958.

Checked on the authors' ``AADBinfo.mat`` (8,458 train and 1,000 test names, scores 0 to 1); the label
lists themselves are in no public repository we could read, so their layout is from the authors' code.

The score is the mean of the raters' 1-5 ratings mapped to [0, 1], higher = better; attributes are in
[-1, 1]. pyiqa has no AADB meta CSV; ours is ``img_name, mos`` (the GeneralNRDataset layout; ``img_name``
relative to ``--root``: ``datasetImages_originalSize/<name>`` or ``AADB_newtest_originalSize/<file>``),
then the attributes under the release's names (``BalacingElements`` [sic], ``ColorHarmony``, ... ; an
attribute whose three files are not all there is left out), and the pipeline adds ``official_split``
(train/val/test words) and ``aadb_official.pkl``.
"""
from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import pandas as pd

from ...utils.errors import DataError
from .label_checks import scores
from .registry import Annotations, Preparer, register, require
from .user_files import read_csv

logger = logging.getLogger(__name__)

TITLE = "AADB"
LABELS = "imgListFiles_label"
TRAIN_DIR, TEST_DIR = "datasetImages_originalSize", "AADB_newtest_originalSize"
EXPECTS = (f"{LABELS}/ (imgListTrainRegression_score.txt, imgListValidationRegression_score.txt, "
           f"imgListTestNewRegression_score.txt, attribute lists), {TRAIN_DIR}/ and {TEST_DIR}/")
SCORE_PREFIX = re.compile(r"^\d\.\d{3}_")
PARTS = {"train": "imgListTrainRegression", "val": "imgListValidationRegression",
         "test": "imgListTestNewRegression"}
ATTRIBUTES = ("BalacingElements", "ColorHarmony", "Content", "DoF", "Light", "MotionBlur", "Object",
              "Repetition", "RuleOfThirds", "Symmetry", "VividColor")


def read(root: Path) -> Annotations:
    parts = {part: _read_list(require(root, f"{LABELS}/{prefix}_score.txt", TITLE, EXPECTS))
             for part, prefix in PARTS.items()}
    table = pd.concat([pd.DataFrame({"img_name": names, "mos": values})
                       for names, values, _ in parts.values()], ignore_index=True)
    official = pd.Series(np.repeat(list(parts), [len(names) for names, _, _ in parts.values()]))
    origins = [o for _, _, lines in parts.values() for o in lines]
    for attribute in ATTRIBUTES:
        files = [Path(root) / LABELS / f"{prefix}_{attribute}.txt" for prefix in PARTS.values()]
        if not all(f.is_file() for f in files):
            logger.info("%s: attribute '%s' left out: %s not found", TITLE, attribute,
                        [str(f) for f in files if not f.is_file()])
            continue
        values: Dict[str, float] = {}
        for f in files:
            values.update(zip(*_read_list(f, negative=True)[:2]))
        table[attribute] = table["img_name"].map(values)
    table["img_name"] = _image_paths(Path(root), table["img_name"], official)
    return Annotations(table, official_split=official, origins=origins)


def _image_paths(root: Path, names: pd.Series, official: pd.Series) -> List[str]:
    """Each listed name as a path under ``--root``: train/val in TRAIN_DIR, test in TEST_DIR (also under
    its score-prefixed file name), else TRAIN_DIR when the test image is only there."""
    test_files: Dict[str, str] = {}
    if (root / TEST_DIR).is_dir():
        for path in sorted((root / TEST_DIR).iterdir()):
            test_files.setdefault(SCORE_PREFIX.sub("", path.name), path.name)
    out = []
    for name, part in zip(names, official):
        plain = SCORE_PREFIX.sub("", name)
        if part == "test" and plain in test_files:
            out.append(f"{TEST_DIR}/{test_files[plain]}")
        elif part == "test" and not (root / TRAIN_DIR / name).is_file():
            out.append(f"{TEST_DIR}/{name}")
        else:
            out.append(f"{TRAIN_DIR}/{name}")
    return out


def _read_list(path: Path, negative: bool = False) -> Tuple[List[str], np.ndarray, List[str]]:
    """(image names, values, line origins) of one ``<name> <value>`` list; DataError naming the line
    of a value that is not a number (>= 0 unless ``negative``: the attributes are in [-1, 1])."""
    raw = read_csv(path, f"{TITLE} list ('<image name> <value>' per line)", sep=r"\s+", header=None,
                   dtype=str, keep_default_na=False)
    if raw.shape[1] != 2:
        raise DataError(f"{TITLE}: '{path}' has {raw.shape[1]} fields per line; expected 2 "
                        f"(<image name> <value>)")
    lines = [f"line {i + 1} ({n})" for i, n in enumerate(raw[0])]
    values = scores(raw[1], lines, "value", f"{TITLE}: '{path}'", negative=negative)
    return raw[0].tolist(), values, [f"'{path}' {line}" for line in lines]


register(Preparer(name="aadb", title=TITLE, meta_file="meta_info_AADBDataset.csv",
                  image_dir="", marker=f"{LABELS}/{PARTS['train']}_score.txt", expects=EXPECTS, read=read,
                  mos_range=(0.0, 1.0),
                  mos_column="mos", lower_better=False, size=9958))
