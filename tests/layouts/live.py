"""LIVE IQA Release 2 as published: dmos.mat, dmos_realigned.mat, refnames_all.mat (1 x 982 each, in
the folder order jp2k 227, jpeg 233, wn 174, gblur 174, fastfading 174), refimgs/ and the five folders
of img<k>.bmp. All but a few entries are marked orgs == 1 (reference copies), so only those few are rows."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io

from . import Layout, tiny_image

REAL = Path(__file__).resolve().parent.parent / "fixtures" / "real"  # excerpts; see their SOURCE.md

COLUMNS = ["ref_name", "dist_name", "mos", "dmos_realigned", "dmos_realigned_std", "distortion_type"]
FOLDERS = (("jp2k", 227), ("jpeg", 233), ("wn", 174), ("gblur", 174), ("fastfading", 174))
REFS = ("bikes.bmp", "buildings.bmp", "caps.bmp", "monarch.bmp", "parrots.bmp", "womanhat.bmp")
#: image numbers (1-based, within each folder) that are distorted images in the fixture
DISTORTED = (2, 3, 10, 100)


def write(root: Path) -> Layout:
    total = sum(n for _, n in FOLDERS)
    dmos, dmos_new, dmos_std = np.zeros(total), np.zeros(total), np.zeros(total)
    orgs = np.ones(total)
    refnames = np.empty((1, total), dtype=object)
    refnames[0, :] = [REFS[i % len(REFS)] for i in range(total)]
    for r, ref in enumerate(REFS):
        tiny_image(root / "refimgs" / ref, seed=1000 + r)
    start = 0
    for f, (folder, count) in enumerate(FOLDERS):
        for k in DISTORTED:
            i = start + k - 1
            orgs[i] = 0
            dmos[i], dmos_new[i], dmos_std[i] = 20 + i * 0.05, 30 + i * 0.05, 5 + f + k / 1000
            tiny_image(root / folder / f"img{k}.bmp", seed=i)
        start += count
    tiny_image(root / "jp2k" / "img1.bmp", seed=0)  # a reference copy (orgs == 1): on disk, not a row
    scipy.io.savemat(root / "dmos.mat", {"dmos": dmos[None], "orgs": orgs[None]})
    scipy.io.savemat(root / "dmos_realigned.mat",
                     {"dmos_new": dmos_new[None], "dmos_std": dmos_std[None], "orgs": orgs[None]})
    scipy.io.savemat(root / "refnames_all.mat", {"refnames_all": refnames})
    return Layout(rows=len(FOLDERS) * len(DISTORTED), columns=COLUMNS, reference="ref_name")


def write_real(root: Path) -> Layout:
    """The real (re-saved) dmos_realigned.mat of fixtures/real/live, with dmos.mat and refnames_all.mat
    written by us: orgs = 1 where the real dmos_new is 0 (the 203 reference copies), dmos = |dmos_new|,
    references cycling through REFS; a tiny image for each of the 779 distorted entries."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "dmos_realigned.mat").write_bytes((REAL / "live" / "dmos_realigned.mat").read_bytes())
    dmos_new = scipy.io.loadmat(root / "dmos_realigned.mat")["dmos_new"]
    orgs = (dmos_new == 0).astype(float)
    scipy.io.savemat(root / "dmos.mat", {"dmos": np.abs(dmos_new), "orgs": orgs})
    refnames = np.empty((1, dmos_new.size), dtype=object)
    refnames[0, :] = [REFS[i % len(REFS)] for i in range(dmos_new.size)]
    scipy.io.savemat(root / "refnames_all.mat", {"refnames_all": refnames})
    entry = 0
    for folder, count in FOLDERS:
        for k in range(1, count + 1):
            if not orgs[0, entry]:
                tiny_image(root / folder / f"img{k}.bmp", seed=entry, size=(8, 6))
            entry += 1
    return Layout(rows=int((orgs == 0).sum()), columns=COLUMNS, reference="ref_name")
