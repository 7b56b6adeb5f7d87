"""LIVE In the Wild Image Quality Challenge (CLIVE, Ghadiyaram & Bovik 2016): 1,162 authentic images.

Published layout (``ChallengeDB_release``): ``Data/AllImages_release.mat`` (variable ``AllImages_release``,
a 1169x1 cell of bare file names), ``Data/AllMOS_release.mat`` (``AllMOS_release``, 1x1169 MOS) and
``Data/AllStdDev_release.mat`` (``AllStdDev_release``, 1x1169 standard deviations), all in the same
order; images in ``Images/`` (``100.bmp`` ...), except the 7 "training" images ``t1.bmp`` ... ``t7.bmp``
that open the MAT lists and sit in ``Images/trainingImages/``. MOS on 0-100, higher = better.

IQA-PyTorch's published CSV is ``img_name,mos,std`` in MAT order, the 7 training images first with their
bare MAT names (``t1.bmp``), so the benchmark is the 1,162 rows after them (``LIVEChallengeDataset`` drops
those 7 rows before applying split indices; we declare them as ``leading_rows``, outside every split). We
write exactly that: the same names, values and order.

Layout from documentation and IQA-PyTorch's reader, not yet checked on a real file (the release's .mat
files were not found in any public repository); IQA-PyTorch's published meta file (1,169 rows, MOS
3.42-92.43), written from them, agrees with it. A MOS or std that is not a finite number >= 0 is an
error naming the file and entry; an image listed twice is kept once when its scores agree, else an error.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import List

import numpy as np
import pandas as pd
import scipy.io

from ...utils.errors import DataError
from .label_checks import drop_repeats, scores
from .registry import Annotations, Preparer, register, require

TITLE = "LIVE Challenge"
EXPECTS = ("Data/AllImages_release.mat, Data/AllMOS_release.mat, Data/AllStdDev_release.mat and Images/ "
           "(100.bmp ..., trainingImages/t1.bmp ...): the ChallengeDB_release folder")
LEADING = 7  # the "training" images t1.bmp ... t7.bmp, outside the 1,162-image benchmark
TRAINING_NAME = re.compile(r"^t\d+\.bmp$")


def _load(root: Path, name: str) -> np.ndarray:
    """Variable ``name`` of ``Data/<name>.mat``; DataError naming the file when it is absent or unreadable."""
    relative = f"Data/{name}.mat"
    path = require(root, relative, TITLE, EXPECTS)
    try:
        mat = scipy.io.loadmat(str(path))
    except (ValueError, TypeError, OSError, NotImplementedError) as exc:
        raise DataError(f"{TITLE}: '{path}' is not a readable MAT file: {exc}") from exc
    if name not in mat:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise DataError(f"{TITLE}: '{path}' has no variable '{name}' (found {found})")
    return mat[name]


def _names(cells: np.ndarray, path: str) -> List[str]:
    names = []
    for i, cell in enumerate(cells.ravel()):
        value = np.ravel(cell)
        if value.size != 1 or not isinstance(value[0], str) or not value[0].strip():
            raise DataError(f"{TITLE}: '{path}' entry {i + 1}: {cell!r} is not an image file name")
        names.append(value[0].strip())
    return names


def _numbers(values: np.ndarray, path: str, what: str, names: List[str]) -> np.ndarray:
    flat = np.ravel(values)
    if flat.size != len(names):
        raise DataError(f"{TITLE}: '{path}' holds {flat.size} {what} values for {len(names)} images "
                        f"(AllImages_release.mat)")
    return scores(flat, [f"entry {i + 1} ({n})" for i, n in enumerate(names)], what, f"{TITLE}: '{path}'")


def read(root: Path) -> Annotations:
    names = _names(_load(root, "AllImages_release"), "Data/AllImages_release.mat")
    mos = _numbers(_load(root, "AllMOS_release"), "Data/AllMOS_release.mat", "MOS", names)
    std = _numbers(_load(root, "AllStdDev_release"), "Data/AllStdDev_release.mat", "std", names)
    training = [bool(TRAINING_NAME.match(n)) for n in names]
    if len(names) <= LEADING or not all(training[:LEADING]) or any(training[LEADING:]):
        raise DataError(f"{TITLE}: 'Data/AllImages_release.mat' must list the {LEADING} training images "
                        f"t1.bmp ... t{LEADING}.bmp first and only there; it starts {names[:LEADING + 1]}")
    table = pd.DataFrame({"img_name": names, "mos": mos, "std": std})
    table = drop_repeats(table, "img_name", ["mos", "std"], [f"entry {i + 1}" for i in range(len(names))],
                         f"{TITLE}: 'Data/AllImages_release.mat'")
    leading = int(table["img_name"].map(lambda n: bool(TRAINING_NAME.match(n))).sum())  # 7 unless repeated
    return Annotations(table, leading_rows=leading)


register(Preparer(name="livec", title=TITLE, meta_file="meta_info_LIVEChallengeDataset.csv",
                  image_dir="Images", expects=EXPECTS, read=read, mos_range=(0.0, 100.0), mos_column="mos",
                  lower_better=False, size=1162, marker="Data/AllImages_release.mat"))
