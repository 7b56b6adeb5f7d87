"""KonIQ-10k (Hosu et al., IEEE TIP 2020): 10,073 authentic images, each rated by about 120 crowd workers.

Published files, both read: ``koniq10k_scores_and_distributions.csv`` (from the release; header
``image_name,c1,c2,c3,c4,c5,c_total,MOS,SD,MOS_zscore``: c1..c5 the votes on the 5 ACR levels, ``MOS`` and
``SD`` on the 1-5 scale, ``MOS_zscore`` the MOS rescaled to 0-100) and ``koniq10k_distributions_sets.csv``
(the authors' ``metadata/`` on GitHub; header ``image_name,c1,c2,c3,c4,c5,c_total,MOS,SD,set``: c1..c5 as
vote fractions, ``MOS`` = the 0-100 ``MOS_zscore``, ``SD`` on 1-5, ``set`` = training/validation/test,
7058/1000/2015 images). Images: ``512x384/`` (what UniQA's release trains on; ``1024x768/`` holds the
same file names at full size: point ``dataroot_target`` there to use it). Higher = better.

pyiqa's CSV is ``img_name,mos,std,split,c1,c2,c3,c4,c5,c_total``, every value taken from the sets file:
``mos`` is the 0-100 score (so configs use ``mos_range: [0, 100]``), ``std`` the 1-5 ``SD`` and
``split`` the ``set`` column as written there. We add ``mos_1to5``, the 1-5 ``MOS`` of the scores file,
and the ``set`` column as the official split (``koniq10k_official.pkl``).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...utils.errors import DataError
from .registry import Annotations, Preparer, register, require

TITLE = "KonIQ-10k"
SETS = "koniq10k_distributions_sets.csv"
SCORES = "koniq10k_scores_and_distributions.csv"
EXPECTS = (f"{SCORES} (from the release), {SETS} (github.com/subpic/koniq, metadata/) and 512x384/ "
           "(10004473376.jpg ...)")
SETS_COLUMNS = ["image_name", "c1", "c2", "c3", "c4", "c5", "c_total", "MOS", "SD", "set"]
SCORES_COLUMNS = ["image_name", "MOS", "SD", "MOS_zscore"]
OFFICIAL = {"training": "train", "validation": "val", "test": "test"}
NUMERIC = ["MOS", "SD", "c1", "c2", "c3", "c4", "c5", "c_total"]


def _csv(root: Path, name: str, need: list) -> pd.DataFrame:
    path = require(root, name, TITLE, EXPECTS)
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise DataError(f"{TITLE}: '{path}' cannot be parsed as CSV: {exc}") from exc
    raw.columns = [c.strip() for c in raw.columns]
    missing = [c for c in need if c not in raw.columns]
    if missing:
        raise DataError(f"{TITLE}: '{path}' lacks columns {missing}; found {list(raw.columns)}")
    raw["image_name"] = raw["image_name"].str.strip()
    return raw


def _number(raw: pd.DataFrame, column: str, name: str) -> pd.Series:
    values = pd.to_numeric(raw[column].str.strip(), errors="coerce")
    if values.isna().any():
        row = int(values.isna().to_numpy().nonzero()[0][0])
        raise DataError(f"{TITLE}: '{name}' line {row + 2} ({raw['image_name'][row]}): {column} "
                        f"{raw[column][row]!r} is not a number")
    return values


def read(root: Path) -> Annotations:
    sets = _csv(root, SETS, SETS_COLUMNS)
    scores = _csv(root, SCORES, SCORES_COLUMNS)
    split = sets["set"].str.strip()
    bad = ~split.isin(list(OFFICIAL))
    if bad.any():
        row = int(bad.to_numpy().nonzero()[0][0])
        raise DataError(f"{TITLE}: '{SETS}' line {row + 2}: set {sets['set'][row]!r} is not one of "
                        f"{list(OFFICIAL)}")
    numbers = {c: _number(sets, c, SETS) for c in NUMERIC}
    raw_mos = _number(scores, "MOS", SCORES).set_axis(scores["image_name"])
    unknown = sorted(set(sets["image_name"]) ^ set(scores["image_name"]))
    if unknown:
        raise DataError(f"{TITLE}: '{SETS}' and '{SCORES}' list different images ({len(unknown)} in only "
                        f"one of them, e.g. {unknown[:5]})")
    if raw_mos.index.duplicated().any():
        raise DataError(f"{TITLE}: '{SCORES}' lists image "
                        f"'{raw_mos.index[raw_mos.index.duplicated()][0]}' more than once")
    table = pd.DataFrame({"img_name": sets["image_name"], "mos": numbers["MOS"], "std": numbers["SD"],
                          "split": split, **{c: numbers[c] for c in NUMERIC[2:]},
                          "mos_1to5": raw_mos.reindex(sets["image_name"]).to_numpy()})
    table["c_total"] = table["c_total"].astype(int)
    return Annotations(table, official_split=split.map(OFFICIAL))


register(Preparer(name="koniq10k", title=TITLE, meta_file="meta_info_KonIQ10kDataset.csv",
                  image_dir="512x384", expects=EXPECTS, read=read, mos_range=(0.0, 100.0), mos_column="mos",
                  lower_better=False, size=10073))
