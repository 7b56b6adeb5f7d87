"""AGIQA-3K (Li et al., IEEE TCSVT 2023): 2,982 AI-generated images from six text-to-image models
(AttnGAN, DALLE2, GLIDE, Midjourney, Stable Diffusion 1.5, SDXL 2.2), each rated for perceptual quality
and for text-to-image alignment.

Published layout (github.com/lcysyzxdxc/AGIQA-3k-Database): ``data.csv`` with the header
``name,prompt,adj1,adj2,style,mos_quality,std_quality,mos_align,std_align`` (image file name, prompt, the
prompt's two optional adjectives and optional style, empty when absent, then MOS and std of perception
and of alignment), and the images from the authors' ``file.zip`` in ``file/`` (``AttnGAN_normal_000.jpg``:
``<generator>_<setting>_<index>.jpg``; indices have gaps, hence 2,982 not 3,000). The README also names an
``AIGC_MOS_Zscore.xlsx`` with the same nine columns; the repository ships them as ``data.csv``, which is
what we read. The quality MOS is a normalised opinion score on roughly 0-5 (about 0.2 to 4.5 in the
release), higher = better.

pyiqa (IQA-PyTorch) publishes no meta CSV for this set, so ours uses pyiqa's no-reference layout
``img_name,mos,std`` (perception MOS and std) and then adds ``prompt,adj1,adj2,style,mos_align,
std_align`` and ``generator`` (the file-name prefix). No official split: no content grouping either (each
image is its own content; the same prompt recurs across generators, as in every published protocol).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...utils.errors import DataError
from .registry import Annotations, Preparer, register, require

TITLE = "AGIQA-3K"
EXPECTS = "data.csv and file/ (the images of file.zip: AttnGAN_normal_000.jpg ...)"
HEADER = ["name", "prompt", "adj1", "adj2", "style", "mos_quality", "std_quality", "mos_align", "std_align"]
COLUMNS = ["img_name", "mos", "std", "prompt", "adj1", "adj2", "style", "mos_align", "std_align", "generator"]


def read(root: Path) -> Annotations:
    path = require(root, "data.csv", TITLE, EXPECTS)
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    if list(raw.columns[:len(HEADER)]) != HEADER:
        raise DataError(f"{TITLE}: '{path}' must start with columns {HEADER}, found {list(raw.columns)}")
    mos = pd.to_numeric(raw["mos_quality"], errors="coerce")
    if mos.isna().any():
        row = int(mos.isna().to_numpy().nonzero()[0][0])
        raise DataError(f"{TITLE}: '{path}' line {row + 2}: mos_quality {raw['mos_quality'][row]!r} "
                        f"is not a number")
    table = pd.DataFrame({"img_name": raw["name"], "mos": mos, "std": raw["std_quality"],
                          "prompt": raw["prompt"], "adj1": raw["adj1"], "adj2": raw["adj2"],
                          "style": raw["style"], "mos_align": raw["mos_align"], "std_align": raw["std_align"],
                          "generator": raw["name"].str.split("_", n=1).str[0]})
    return Annotations(table[COLUMNS])


register(Preparer(name="agiqa3k", title=TITLE, meta_file="meta_info_AGIQA3KDataset.csv", image_dir="file",
                  expects=EXPECTS, read=read, mos_range=(0.0, 5.0), mos_column="mos", lower_better=False,
                  size=2982))
