"""KADID-10k (Lin et al., QoMEX 2019): 10,125 images, 81 references x 25 distortions x 5 levels.

Published layout: ``dmos.csv`` (header ``dist_img,ref_img,dmos,var``) and ``images/`` holding both the
references (``I01.png``) and the distorted images (``I01_01_01.png``: reference, distortion type
1-25, level 1-5). Despite its name the ``dmos`` column is a mean opinion score on 1-5, higher = better.
pyiqa's CSV is ``ref_name,dist_name,dmos,std`` with ``std`` copied from the ``var`` column; we add the
distortion type and level parsed from the file name.

Layout from documentation, not yet checked on a real file (the release's ``dmos.csv`` was not found in
any public repository); IQA-PyTorch's published ``meta_info_KADID10kDataset.csv``, written from it
(10,125 rows, 81 references, dmos 1.0-4.93, std 0.0-1.593), agrees with what we read and write. A dmos or
var that is empty, text, ``inf`` or negative is an error naming the line; an image listed twice is kept
once when its scores agree, else an error.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...utils.errors import DataError
from .label_checks import drop_repeats, scores
from .registry import Annotations, Preparer, register, require
from .user_files import read_csv

EXPECTS = "dmos.csv and images/ (I01.png ..., I01_01_01.png ...)"


def read(root: Path) -> Annotations:
    path = require(root, "dmos.csv", "KADID-10k", EXPECTS)
    raw = read_csv(path, "KADID-10k annotations", dtype=str, keep_default_na=False)
    need = ["dist_img", "ref_img", "dmos", "var"]
    if list(raw.columns[:4]) != need:
        raise DataError(f"KADID-10k: '{path}' must start with columns {need}, found {list(raw.columns)}")
    parts = raw["dist_img"].str.extract(r"^I\d+_(\d+)_(\d+)\.")
    if parts.isna().any().any():
        row = int(parts.isna().any(axis=1).to_numpy().nonzero()[0][0])
        raise DataError(f"KADID-10k: '{path}' line {row + 2}: image name {raw['dist_img'][row]!r} is not "
                        f"of the form I<ref>_<type>_<level>.png")
    lines = [f"line {i + 2}" for i in range(len(raw))]
    where = f"KADID-10k: '{path}'"
    table = pd.DataFrame({"ref_name": raw["ref_img"], "dist_name": raw["dist_img"],
                          "dmos": scores(raw["dmos"], lines, "dmos", where),
                          "std": scores(raw["var"], lines, "var", where),
                          "distortion_type": parts[0].astype(int), "distortion_level": parts[1].astype(int)})
    table = drop_repeats(table, "dist_name", ["ref_name", "dmos", "std"], lines, where)
    return Annotations(table, reference_column="ref_name")


register(Preparer(name="kadid10k", title="KADID-10k", meta_file="meta_info_KADID10kDataset.csv",
                  image_dir="images", expects=EXPECTS, read=read, mos_range=(1.0, 5.0), mos_column="dmos",
                  image_column="dist_name", lower_better=False, size=10125, marker="dmos.csv"))
