"""LIVE IQA Release 2 (Sheikh et al., 2006): 779 distorted images of 29 references, 5 distortion types.

Published layout: folders ``jp2k/`` (227 images), ``jpeg/`` (233), ``wn/`` (174), ``gblur/`` (174),
``fastfading/`` (174), each ``img1.bmp`` ... ``img<n>.bmp``, and ``refimgs/`` (``bikes.bmp`` ...);
``dmos.mat`` (variables ``dmos`` and ``orgs``, 1 x 982), ``dmos_realigned.mat`` (``dmos_new``,
``dmos_std``, ``orgs``, 1 x 982) and ``refnames_all.mat`` (``refnames_all``, a 1 x 982 cell of reference
file names). Entry ``i`` of the arrays is image ``img<k>.bmp`` of the folders taken in the order above
(entries 1-227 are ``jp2k/img1..227``, 228-460 ``jpeg/img1..233``, ...); ``orgs == 1`` marks the 203
entries that are copies of a reference, which are not part of the 779 and are left out. The DMOS is
on about 0-100, lower = better.

IQA-PyTorch's published CSV is ``ref_name,dist_name,mos``: ``refimgs/bikes.bmp``, ``jp2k/img2.bmp`` (both
relative to the release folder, the config's dataroot_target) and ``mos`` = ``dmos`` of ``dmos.mat`` (a
DMOS despite the column name; its configs give ``dmos_max: 100``). We write the same three columns, then
the realigned DMOS and its standard deviation (``dmos_new``, ``dmos_std`` of ``dmos_realigned.mat``, which
the release's readme recommends) and the distortion folder.

Checked on real files only in part: a copy of the release's ``dmos_realigned.mat`` (re-saved by a third
party, with its ``orgs`` replaced) has ``dmos_new``/``dmos_std`` of 982 entries, 0 at exactly the 203
entries IQA-PyTorch's published meta file leaves out (779 rows: jp2k 169, jpeg 175, wn 145, gblur 145,
fastfading 145), which confirms the folder order and counts above; its realigned DMOS runs -2.64 to 111.77
(three slightly negative: jpeg/img13, img57, img70; a difference score can be, so they are kept).
IQA-PyTorch's ``mos`` (``dmos.mat``) runs 17.90-84.49 over the 779 rows. The layout of ``dmos.mat`` and
``refnames_all.mat`` is from documentation and IQA-PyTorch's reader, not yet checked on a real file. A
DMOS or std that is not a finite number >= 0 (the realigned DMOS: not finite) is an error naming file,
variable and image.
"""
from __future__ import annotations

from pathlib import Path
from typing import Dict

import numpy as np
import pandas as pd
import scipy.io

from ...utils.errors import DataError
from .label_checks import scores
from .registry import Annotations, Preparer, register, require

TITLE = "LIVE IQA"
EXPECTS = ("dmos.mat, dmos_realigned.mat, refnames_all.mat, refimgs/ and the folders jp2k, jpeg, wn, "
           "gblur, fastfading")
#: folders in the order of the .mat arrays, with their number of images.
FOLDERS = (("jp2k", 227), ("jpeg", 233), ("wn", 174), ("gblur", 174), ("fastfading", 174))
ENTRIES = sum(count for _, count in FOLDERS)


def read(root: Path) -> Annotations:
    dmos = _load(root, "dmos.mat", ("dmos", "orgs"))
    realigned = _load(root, "dmos_realigned.mat", ("dmos_new", "dmos_std"))
    refs = _load(root, "refnames_all.mat", ("refnames_all",))["refnames_all"]
    orgs = dmos["orgs"]
    if not np.isin(orgs, (0, 1)).all():
        entry = int(np.flatnonzero(~np.isin(orgs, (0, 1)))[0])
        raise DataError(f"{TITLE}: '{Path(root) / 'dmos.mat'}' variable 'orgs' entry {entry + 1} is "
                        f"{orgs[entry]}; expected 0 (distorted) or 1 (a reference copy)")
    folders = np.concatenate([[name] * count for name, count in FOLDERS])
    numbers = np.concatenate([np.arange(1, count + 1) for _, count in FOLDERS])
    table = pd.DataFrame({"ref_name": [f"refimgs/{_ref_name(r, i)}" for i, r in enumerate(refs)],
                          "dist_name": [f"{f}/img{k}.bmp" for f, k in zip(folders, numbers)],
                          "mos": dmos["dmos"], "dmos_realigned": realigned["dmos_new"],
                          "dmos_realigned_std": realigned["dmos_std"], "distortion_type": folders})
    table = table[orgs == 0].reset_index(drop=True)
    for column, (file, variable) in {"mos": ("dmos.mat", "dmos"),
                                     "dmos_realigned": ("dmos_realigned.mat", "dmos_new"),
                                     "dmos_realigned_std": ("dmos_realigned.mat", "dmos_std")}.items():
        entries = [f"entry {i + 1} ({name})" for i, name in zip(np.flatnonzero(orgs == 0), table["dist_name"])]
        table[column] = scores(table[column], entries, f"variable '{variable}'", f"{TITLE}: '{Path(root) / file}'",
                               negative=column == "dmos_realigned")
    return Annotations(table, reference_column="ref_name")


def _load(root: Path, name: str, variables) -> Dict[str, np.ndarray]:
    """The named 1 x 982 variables of a .mat file, flattened; DataError naming file and variable."""
    path = require(root, name, TITLE, EXPECTS)
    try:
        content = scipy.io.loadmat(path)
    except Exception as exc:  # scipy raises ValueError / MatReadError / OSError on a bad file
        raise DataError(f"{TITLE}: cannot read '{path}' as a MATLAB file: {exc}") from exc
    out = {}
    for variable in variables:
        if variable not in content:
            found = sorted(k for k in content if not k.startswith("__"))
            raise DataError(f"{TITLE}: '{path}' has no variable '{variable}' (found {found})")
        values = np.asarray(content[variable]).ravel()
        if len(values) != ENTRIES:
            raise DataError(f"{TITLE}: '{path}' variable '{variable}' has {len(values)} entries; LIVE "
                            f"Release 2 has {ENTRIES} ({', '.join(f'{f} {n}' for f, n in FOLDERS)})")
        out[variable] = values
    return out


def _ref_name(cell, entry: int) -> str:
    """One ``refnames_all`` cell (loadmat gives a 1-element string array) as text."""
    values = np.asarray(cell).ravel()
    if len(values) != 1 or not isinstance(values[0], str) or not values[0].strip():
        raise DataError(f"{TITLE}: 'refnames_all.mat' entry {entry + 1} is {cell!r}, not a file name")
    return values[0].strip()


# A DMOS is a difference score on *about* 0-100 (the realigned one runs -2.64 to 111.77), so values past
# 100 are no error: scale_published=False.
register(Preparer(name="live", title=TITLE, meta_file="meta_info_LIVEIQADataset.csv", image_dir="",
                  expects=EXPECTS, read=read, mos_range=(0.0, 100.0), mos_column="mos",
                  image_column="dist_name", lower_better=True, size=779, marker="refnames_all.mat",
                  scale_published=False))
