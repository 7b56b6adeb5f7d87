"""AGIN in the layout its authors' loader reads (JOINT/AGINDataset.py: a CSV with filename, MOS_nat,
MOS_tech, MOS_rat); the table's file name and the image folder are not published, so this fixture uses
names of our own (AGIN_mos.csv, images/) and an artifact-shuffled copy folder as the authors' code makes."""
from __future__ import annotations

import csv
from pathlib import Path

from . import Layout, tiny_image

COLUMNS = ["img_name", "mos_nat", "mos_tech", "mos_rat", "model"]
HEADER = ["filename", "MOS_nat", "MOS_tech", "MOS_rat"]
MODELS = ["CoCosNet", "DALLE2", "Inpaint_LaMa", "natural"]


def write(root: Path, per_model: int = 3) -> Layout:
    """``per_model`` images of four sources; the three labels differ per row (1-5)."""
    rows = []
    for m, model in enumerate(MODELS):
        for i in range(per_model):
            k = m * per_model + i
            name = f"{model}_{i + 1}.png"
            rows.append([name, f"{1.1 + 0.3 * k:.4f}", f"{4.9 - 0.3 * k:.4f}", f"{1.5 + 0.2 * k:.4f}"])
            tiny_image(root / "images" / name, seed=k)
            tiny_image(root / "AGIN_patch_partitioned" / name, seed=50 + k)  # must be ignored
    with open(root / "AGIN_mos.csv", "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows(rows)
    (root / "notes.csv").write_text("a,b\n1,2\n")  # another CSV beside it: not the table
    return Layout(rows=len(rows), columns=COLUMNS)
