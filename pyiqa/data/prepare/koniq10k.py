"""KonIQ-10k (Hosu et al., IEEE TIP 2020): 10,073 authentic images, each rated by about 120 crowd workers.

Published files: ``koniq10k_distributions_sets.csv`` (the authors' ``metadata/`` on GitHub; header
``image_name,c1,c2,c3,c4,c5,c_total,MOS,SD,set``: c1..c5 the vote fractions on the 5 ACR levels, ``MOS``
on 0-100 (the release's ``MOS_zscore``), ``SD`` on 1-5, ``set`` = training/validation/test) and, optional,
``koniq10k_scores_and_distributions.csv`` (the release; header ``image_name,c1,...,c_total,MOS,SD,
MOS_zscore`` with vote counts and the MOS on 1-5). Images: ``512x384/`` (what UniQA's release trains on;
``1024x768/`` holds the same names at full size: point ``dataroot_target`` there to use it). Higher =
better.

pyiqa's CSV is ``img_name,mos,std,split,c1,c2,c3,c4,c5,c_total``, every value from the sets file, and
``split`` holds IQA-PyTorch's codes ``0`` (training), ``1`` (validation), ``2`` (test). We write the same
and add ``official_split`` (the same split in words, as ``koniq10k_official.pkl``) and, when the scores
file is there, ``mos_1to5`` (its 1-5 MOS). Checked on the real sets file (github.com/subpic/koniq): 10,073
rows, 7,058/1,000/2,015, MOS 3.91-88.39; our columns equal IQA-PyTorch's published
``meta_info_KonIQ10kDataset.csv`` row for row. The scores file's layout is from documentation, not yet
checked on a real file.
"""
from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from ...utils.errors import DataError
from .label_checks import drop_repeats, scores
from .registry import Annotations, Preparer, register, require
from .user_files import read_csv

logger = logging.getLogger(__name__)

TITLE = "KonIQ-10k"
SETS = "koniq10k_distributions_sets.csv"
SCORES = "koniq10k_scores_and_distributions.csv"
EXPECTS = (f"{SETS} (github.com/subpic/koniq, metadata/), 512x384/ (10004473376.jpg ...) and, optional, "
           f"{SCORES} (from the release)")
SETS_COLUMNS = ["image_name", "c1", "c2", "c3", "c4", "c5", "c_total", "MOS", "SD", "set"]
SCORES_COLUMNS = ["image_name", "MOS", "SD", "MOS_zscore"]
OFFICIAL = {"training": "train", "validation": "val", "test": "test"}
#: IQA-PyTorch's codes for the ``split`` column (its scripts/process_koniq10k.py)
CODES = {"training": 0, "validation": 1, "test": 2}
NUMERIC = ["MOS", "SD", "c1", "c2", "c3", "c4", "c5", "c_total"]


def _csv(root: Path, name: str, need: list) -> pd.DataFrame:
    path = require(root, name, TITLE, EXPECTS)
    raw = read_csv(path, f"{TITLE} annotations", dtype=str, keep_default_na=False)
    raw.columns = [c.strip() for c in raw.columns]
    missing = [c for c in need if c not in raw.columns]
    if missing:
        raise DataError(f"{TITLE}: '{path}' lacks columns {missing}; found {list(raw.columns)}")
    raw["image_name"] = raw["image_name"].str.strip()
    return raw


def _number(raw: pd.DataFrame, column: str, path: Path) -> pd.Series:
    rows = [f"line {i + 2} ({n})" for i, n in enumerate(raw["image_name"])]
    return pd.Series(scores(raw[column], rows, column, f"{TITLE}: '{path}'"))


def _mos_1to5(root: Path, names: pd.Series):
    """The scores file's 1-5 MOS in the order of ``names``, or None (logged) when the file is absent."""
    if not (Path(root) / SCORES).exists():
        logger.info("%s: no '%s' under '%s': the meta CSV has no mos_1to5 column", TITLE, SCORES, root)
        return None
    scores_table = _csv(root, SCORES, SCORES_COLUMNS)
    raw_mos = _number(scores_table, "MOS", Path(root) / SCORES).set_axis(scores_table["image_name"])
    if raw_mos.index.duplicated().any():
        raise DataError(f"{TITLE}: '{SCORES}' lists image "
                        f"'{raw_mos.index[raw_mos.index.duplicated()][0]}' more than once")
    unknown = sorted(set(names) ^ set(raw_mos.index))
    if unknown:
        raise DataError(f"{TITLE}: '{SETS}' and '{SCORES}' list different images ({len(unknown)} in only "
                        f"one of them, e.g. {unknown[:5]})")
    return raw_mos.reindex(names).to_numpy()


def read(root: Path) -> Annotations:
    sets = _csv(root, SETS, SETS_COLUMNS)
    split = sets["set"].str.strip()
    bad = ~split.isin(list(OFFICIAL))
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise DataError(f"{TITLE}: '{SETS}' line {row + 2}: set {sets['set'][row]!r} is not one of "
                        f"{list(OFFICIAL)}")
    numbers = {c: _number(sets, c, Path(root) / SETS) for c in NUMERIC}
    table = pd.DataFrame({"img_name": sets["image_name"], "mos": numbers["MOS"], "std": numbers["SD"],
                          "split": split.map(CODES), **{c: numbers[c] for c in NUMERIC[2:]}})
    table["c_total"] = table["c_total"].astype(int)
    table["official_split"] = split.map(OFFICIAL)
    table = drop_repeats(table, "img_name", list(table.columns[1:]),
                         [f"line {i + 2}" for i in range(len(table))], f"{TITLE}: '{SETS}'")
    official = table.pop("official_split")
    mos_1to5 = _mos_1to5(root, table["img_name"])
    if mos_1to5 is not None:
        table["mos_1to5"] = mos_1to5
    return Annotations(table, official_split=official)


register(Preparer(name="koniq10k", title=TITLE, meta_file="meta_info_KonIQ10kDataset.csv",
                  image_dir="512x384", expects=EXPECTS, read=read, mos_range=(0.0, 100.0), mos_column="mos",
                  lower_better=False, size=10073, marker=SETS))
