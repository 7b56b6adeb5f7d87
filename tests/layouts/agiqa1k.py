"""AGIQA-1K as published: AIGC_MOS_Zscore.xlsx (sheet Sheet1: Image, Prompt, MOS), optionally the
repository's AIGC_all.csv (Image,Score: other scores, never read) + file/ with the JPEGs named
<model>_<main>_<second>_<place>_<style>.jpg."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import Layout, tiny_image

COLUMNS = ["img_name", "mos", "prompt", "generator", "main_object", "second_object", "place", "style",
           "label_file"]
MAIN = ["bird", "cat", "dog", "batman"]
SECOND = ["driving aircraft", "driving bike", "having pizza"]


def _prompt(main: int, second: int, place: int, style: int) -> str:
    return f"{MAIN[main]}, {SECOND[second]}, {['city', 'wild'][place]}, {['anime style', 'realistic style'][style]}"


def write(root: Path, with_csv: bool = False) -> Layout:
    """12 images (two generators x 6 settings); ``with_csv`` adds AIGC_all.csv with other scores."""
    rows = []
    for model in ("deepai", "dreamStudio"):
        for k, (main, second, place, style) in enumerate([(0, 0, 0, 0), (1, 2, 0, 1), (2, 1, 1, 0),
                                                           (3, 0, 1, 1), (0, 2, 1, 1), (2, 2, 0, 0)]):
            name = f"{model}_{main}_{second}_{place}_{style}.jpg"
            score = round((len(rows) * 9 + 2) % 110 / 22, 9)
            rows.append({"Image": name, "Prompt": _prompt(main, second, place, style), "MOS": score})
            tiny_image(root / "file" / name, seed=len(rows))
    table = pd.DataFrame(rows)
    table.to_excel(root / "AIGC_MOS_Zscore.xlsx", sheet_name="Sheet1", index=False, engine="openpyxl")
    if with_csv:
        other = table.assign(Score=(5 - table["MOS"]).round(9))[["Image", "Score"]]
        other.to_csv(root / "AIGC_all.csv", index=False, lineterminator="\n")
    return Layout(rows=len(rows), columns=COLUMNS)
