"""AIGIQA-20K as the NTIRE 2024 challenge publishes it: info_train.xlsx (Sheet1: name, prompt, mos) + train/,
info_val.xlsx and info_test.xlsx (name, prompt: scores hidden) + val/ and test/. The first training rows
are the real ones of tests/fixtures/real/aigiqa20k (names, prompts, MOS as published)."""
from __future__ import annotations

import csv
from pathlib import Path

import pandas as pd

from . import Layout, tiny_image

COLUMNS = ["img_name", "mos", "prompt", "generator"]
REAL = Path(__file__).resolve().parents[1] / "fixtures" / "real" / "aigiqa20k" / "info_train_excerpt.csv"
INVENTED = ["DALLE3_0001.png", "IF_0003.png", "MJ_0005.png", "SDXL_Turbo_0007.png", "Playground_0011.png",
            "SSD1B_0013.png", "Dream_0017.png", "LCM_SDXL_0019.png"]


def real_rows():
    """(name, prompt, mos) of the real excerpt, in file order."""
    with open(REAL, newline="") as f:
        return [(r["name"], r["prompt"], float(r["mos"])) for r in csv.DictReader(f)]


def write(root: Path, scored_val_test: bool = False) -> Layout:
    """12 training rows (4 real + 8 invented), 2 val and 3 test images; with ``scored_val_test`` the val and
    test workbooks carry a mos column too (a release with the scores public)."""
    train = real_rows() + [(n, f"prompt {i}", round(0.4 + 0.37 * i, 4)) for i, n in enumerate(INVENTED)]
    parts = {"train": train,
             "val": [("DALLE2_0025.png", "val prompt a", 2.5), ("SD1.4_0030.png", "val prompt b", 3.1)],
             "test": [("DALLE2_0001.png", "test prompt a", 1.2), ("Pixart_0040.png", "test prompt b", 4.4),
                      ("SDXL_0041.png", "test prompt c", 3.9)]}
    root.mkdir(parents=True, exist_ok=True)
    for k, (part, rows) in enumerate(parts.items()):
        table = pd.DataFrame(rows, columns=["name", "prompt", "mos"])
        if part != "train" and not scored_val_test:
            table = table[["name", "prompt"]]
        table.to_excel(root / f"info_{part}.xlsx", sheet_name="Sheet1", index=False)
        for i, name in enumerate(table["name"]):
            tiny_image(root / part / name, seed=100 * k + i)
    rows = len(train) + (5 if scored_val_test else 0)
    return Layout(rows=rows, columns=COLUMNS, official=scored_val_test)
