"""SPAQ as published: Annotations/*.xlsx (first sheet, headers as the authors' workbooks) + TestImage/."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import Layout, tiny_image

ATTRIBUTES = ["Brightness", "Colorfulness", "Contrast", "Noisiness", "Sharpness"]
SCENES = ["Animal", "Cityscape", "Human", "Indoor scene", "Landscape", "Night scene", "Plant", "Still-life",
          "Others"]
EXIF = ["Focal length", "F-number", "Exposure time", "ISO", "Brightness", "Flash", "Time", "Time"]
COLUMNS = ["Image name", "MOS", *ATTRIBUTES]
EXTRA_COLUMNS = SCENES + ["Focal length", "F-number", "Exposure time", "ISO", "Brightness.1", "Flash",
                          "Time0", "Time1"]


def _xlsx(path: Path, header: list, rows: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(rows)
    frame.columns = header  # EXIF repeats a header; set after construction to keep both
    frame.to_excel(path, sheet_name="Sheet1", index=False, engine="openpyxl")


def write(root: Path, images: int = 15, extras: bool = True) -> Layout:
    names = [f"{i + 1:05d}.jpg" for i in range(images)]
    for i, name in enumerate(names):
        tiny_image(root / "TestImage" / name, seed=i)
    notes = root / "Annotations"
    _xlsx(notes / "MOS and Image attribute scores.xlsx", ["Image name", "MOS", *ATTRIBUTES],
          [[n, 12.5 + 5 * i, *(40.0 + i + k / 10 for k in range(5))] for i, n in enumerate(names)])
    if extras:
        _xlsx(notes / "Scene category labels.xlsx", ["Image name", *SCENES],
              [[n, *(1.0 if k == i % 9 else 0.0 for k in range(9))] for i, n in enumerate(names)])
        _xlsx(notes / "EXIF_tags.xlsx", ["Image name", *EXIF],
              [[n, 4.2, 1.8, 0.01 * (i + 1), 100 + i, 3.0 + i, i % 2, -0.5, 0.866025] for i, n in enumerate(names)])
    return Layout(rows=images, columns=COLUMNS + (EXTRA_COLUMNS if extras else []))
