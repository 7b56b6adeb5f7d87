"""AGIQA-1K as published: AIGC_MOS_Zscore.xlsx (Image, Prompt, MOS) or the repository's AIGC_all.csv
(Image,Score) + file/ with the JPEGs named <model>_<main>_<second>_<place>_<style>.jpg."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import Layout, tiny_image

COLUMNS = ["img_name", "mos", "prompt", "generator", "main_object", "second_object", "place", "style"]
MAIN = ["bird", "cat", "dog", "batman"]
SECOND = ["driving aircraft", "driving bike", "having pizza"]


def _prompt(main: int, second: int, place: int, style: int) -> str:
    return (f"{MAIN[main]} {SECOND[second]} in the {['city', 'wild'][place]}, "
            f"{['anime style', 'realistic style'][style]}")


def write(root: Path, source: str = "xlsx") -> Layout:
    """12 images (two generators x 6 settings); ``source`` 'xlsx' writes the workbook, 'csv' AIGC_all.csv."""
    rows = []
    for model in ("deepai", "dreamStudio"):
        for k, (main, second, place, style) in enumerate([(0, 0, 0, 0), (1, 2, 0, 1), (2, 1, 1, 0),
                                                           (3, 0, 1, 1), (0, 2, 1, 1), (2, 2, 0, 0)]):
            name = f"{model}_{main}_{second}_{place}_{style}.jpg"
            score = round((len(rows) * 9 + 2) % 110 / 22, 9)  # k/22 steps on 0-5, as the release
            rows.append({"Image": name, "Prompt": _prompt(main, second, place, style), "MOS": score})
            tiny_image(root / "file" / name, seed=len(rows))
    table = pd.DataFrame(rows)
    if source == "xlsx":
        table.to_excel(root / "AIGC_MOS_Zscore.xlsx", sheet_name="Sheet1", index=False, engine="openpyxl")
    else:
        table.rename(columns={"MOS": "Score"})[["Image", "Score"]].to_csv(
            root / "AIGC_all.csv", index=False, lineterminator="\n")
    return Layout(rows=len(rows), columns=COLUMNS)
