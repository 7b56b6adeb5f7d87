"""ECIQAD in the layout our preparer documents (no public copy of its annotation file was found): one CSV
with image, source, mos columns beside a folder of enhanced images; 3 low-light sources x 4 methods."""
from __future__ import annotations

import csv
from pathlib import Path

from . import Layout, tiny_image

COLUMNS = ["img_name", "mos", "ref_name"]
METHODS = ["LIME", "RetinexNet", "Zero-DCE", "EnlightenGAN"]


def write(root: Path, sources: int = 5, with_source: bool = True) -> Layout:
    rows = []
    for s in range(sources):
        for m, method in enumerate(METHODS):
            k = s * len(METHODS) + m
            name = f"{s + 1:03d}_{method}.png"
            rows.append([name, f"low_{s + 1:03d}.png", f"{1.2 + 0.18 * k:.3f}"])
            tiny_image(root / "enhanced" / name, seed=k)
    with open(root / "ECIQAD_MOS.csv", "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["image", "source", "mos"] if with_source else ["image", "mos"])
        writer.writerows(rows if with_source else [[r[0], r[2]] for r in rows])
    columns = COLUMNS if with_source else COLUMNS[:2]
    return Layout(rows=len(rows), columns=columns, reference="ref_name" if with_source else None)
