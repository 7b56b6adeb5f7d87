"""LIVE Challenge as published (ChallengeDB_release): Data/All{Images,MOS,StdDev}_release.mat + Images/.

AllImages_release is a n x 1 cell of bare names (the 7 training images first), AllMOS_release and
AllStdDev_release are 1 x n rows, as scipy.io.savemat writes a MATLAB cell and row vectors.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io

from . import Layout, tiny_image

REAL = Path(__file__).resolve().parent.parent / "fixtures" / "real"  # excerpts; see their SOURCE.md

COLUMNS = ["img_name", "mos", "std"]
LEAD = 7


def write(root: Path, images: int = 12) -> Layout:
    names = [f"t{i}.bmp" for i in range(1, LEAD + 1)] + [f"{100 + i}.bmp" for i in range(images)]
    for i, name in enumerate(names):
        folder = root / "Images" / ("trainingImages" if name.startswith("t") else "")
        tiny_image(folder / name, seed=i)
    cells = np.empty((len(names), 1), dtype=object)
    cells[:, 0] = names
    mos = np.array([[10.0 + 3.5 * i for i in range(len(names))]])
    std = np.array([[15.0 + 0.25 * i for i in range(len(names))]])
    data = root / "Data"
    data.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(data / "AllImages_release.mat", {"AllImages_release": cells})
    scipy.io.savemat(data / "AllMOS_release.mat", {"AllMOS_release": mos})
    scipy.io.savemat(data / "AllStdDev_release.mat", {"AllStdDev_release": std})
    return Layout(rows=images, columns=COLUMNS, lead=LEAD)


def write_real(root: Path) -> Layout:
    """The three .mat files re-written from real rows: IQA-PyTorch's first 20 published rows (fixtures/real/
    livec; the real .mat files were not found), in the release's shapes (n x 1 cell, 1 x n rows)."""
    lines = (REAL / "livec" / "meta_info_LIVEChallengeDataset.csv").read_text().splitlines()[1:]
    rows = [line.split(",") for line in lines]
    for i, (name, _, _) in enumerate(rows):
        tiny_image(root / "Images" / ("trainingImages" if name.startswith("t") else "") / name, seed=i, size=(8, 6))
    cells = np.empty((len(rows), 1), dtype=object)
    cells[:, 0] = [r[0] for r in rows]
    data = root / "Data"
    data.mkdir(parents=True, exist_ok=True)
    scipy.io.savemat(data / "AllImages_release.mat", {"AllImages_release": cells})
    scipy.io.savemat(data / "AllMOS_release.mat", {"AllMOS_release": np.array([[float(r[1]) for r in rows]])})
    scipy.io.savemat(data / "AllStdDev_release.mat", {"AllStdDev_release": np.array([[float(r[2]) for r in rows]])})
    return Layout(rows=len(rows) - LEAD, columns=COLUMNS, lead=LEAD)
