"""AGIQA-3K (Li et al., IEEE TCSVT 2023): 2,982 AI-generated images from six text-to-image models
(AttnGAN, DALLE2, GLIDE, Midjourney, Stable Diffusion 1.5, SDXL 2.2), each rated for perceptual quality
and for text-to-image alignment.

Published layout (github.com/lcysyzxdxc/AGIQA-3k-Database): ``data.csv`` (CRLF line ends) with the header
``name,prompt,adj1,adj2,style,mos_quality,std_quality,mos_align,std_align`` (image file name, prompt, the
prompt's two optional adjectives and optional style, empty when absent, then MOS and std of perception
and of alignment), and the images of the authors' ``AGIQA-3K.zip`` (``AttnGAN_normal_000.jpg``:
``<generator>_<setting>_<index>.jpg``, settings normal/lowstep/highcorr/lowcorr; indices have gaps, hence
2,982 not 3,000). The README does not say which folder the zip unpacks to: we expect ``file/`` and
otherwise use the folder under ``--root`` that holds the listed images (the log names it). Checked on the
real ``data.csv``: 2,982 unique names; the quality MOS is a normalised opinion score from 0.0 (8 images)
to 4.4887, higher = better.

pyiqa (IQA-PyTorch) publishes no meta CSV for this set, so ours uses pyiqa's no-reference layout
``img_name,mos,std`` (perception MOS and std) and then adds ``prompt,adj1,adj2,style,mos_align,
std_align`` and ``generator`` (the file-name prefix). No official split: no content grouping either (each
image is its own content; the same prompt recurs across generators, as in every published protocol).
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from ...utils.errors import DataError
from .label_checks import scores
from .registry import Annotations, Preparer, register, require
from .user_files import read_csv

TITLE = "AGIQA-3K"
EXPECTS = "data.csv and file/ (the images of AGIQA-3K.zip: AttnGAN_normal_000.jpg ...)"
HEADER = ["name", "prompt", "adj1", "adj2", "style", "mos_quality", "std_quality", "mos_align", "std_align"]
COLUMNS = ["img_name", "mos", "std", "prompt", "adj1", "adj2", "style", "mos_align", "std_align", "generator"]


def read(root: Path) -> Annotations:
    path = require(root, "data.csv", TITLE, EXPECTS)
    raw = read_csv(path, f"{TITLE} annotations", dtype=str, keep_default_na=False)
    if list(raw.columns[:len(HEADER)]) != HEADER:
        raise DataError(f"{TITLE}: '{path}' must start with columns {HEADER}, found {list(raw.columns)}")
    lines = [f"line {i + 2}" for i in range(len(raw))]
    mos = scores(raw["mos_quality"], lines, "mos_quality", f"{TITLE}: '{path}'")
    table = pd.DataFrame({"img_name": raw["name"], "mos": mos, "std": raw["std_quality"],
                          "prompt": raw["prompt"], "adj1": raw["adj1"], "adj2": raw["adj2"],
                          "style": raw["style"], "mos_align": raw["mos_align"], "std_align": raw["std_align"],
                          "generator": raw["name"].str.split("_", n=1).str[0]})
    return Annotations(table[COLUMNS], origins=[f"'{path}' {line}" for line in lines])


register(Preparer(name="agiqa3k", title=TITLE, meta_file="meta_info_AGIQA3KDataset.csv", image_dir="file",
                  expects=EXPECTS, read=read, mos_range=(0.0, 5.0), mos_column="mos", lower_better=False,
                  size=2982, marker="data.csv"))
