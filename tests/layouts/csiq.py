"""CSIQ as published: csiq.DMOS.xlsx (sheet all_by_image, header in row 4 from column D), src_imgs/ and
dst_imgs/<type>/ (PNG)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from . import Layout, tiny_image

REAL = Path(__file__).resolve().parent.parent / "fixtures" / "real"  # excerpts; see their SOURCE.md

COLUMNS = ["ref_name", "dist_name", "dmos", "std", "distortion_type", "distortion_level"]
REFS = (1600, "aerial_city", "boston", "bridge", "butter_flower")  # 1600 is a number in the sheet
#: dst_type, dst_idx, folder, spelling in the file names
TYPES = (("noise", 1, "awgn", "AWGN"), ("jpeg 2000", 3, "jpeg2000", "jpeg2000"), ("blur", 5, "blur", "BLUR"))
HEADER = ["image", "dst_idx", "dst_type", "dst_lev", "dmos_std", "dmos"]


def write(root: Path, levels: int = 2) -> Layout:
    rows = []
    for r, ref in enumerate(REFS):
        tiny_image(root / "src_imgs" / f"{ref}.png", seed=1000 + r)
        for kind, idx, folder, token in TYPES:
            for lv in range(1, levels + 1):
                rows.append([ref, idx, kind, lv, round(0.05 + 0.01 * len(rows), 3),
                             round(0.1 * lv + 0.02 * idx + 0.001 * r, 4)])
                tiny_image(root / "dst_imgs" / folder / f"{ref}.{token}.{lv}.png", seed=len(rows))
    by_image = pd.DataFrame(rows, columns=HEADER)
    by_distortion = by_image.sort_values(["dst_idx", "dst_lev"], kind="stable")
    root.mkdir(parents=True, exist_ok=True)
    with pd.ExcelWriter(root / "csiq.DMOS.xlsx", engine="openpyxl") as writer:
        by_distortion.to_excel(writer, sheet_name="all_by_distortion", startrow=3, startcol=3, index=False)
        by_image.to_excel(writer, sheet_name="all_by_image", startrow=3, startcol=3, index=False)
        writer.sheets["all_by_image"]["D2"] = "CSIQ DMOS, sorted by image"
    return Layout(rows=len(rows), columns=COLUMNS, reference="ref_name")


def write_real(root: Path) -> Layout:
    """A workbook re-written from real rows: IQA-PyTorch's published CSIQ rows of references 1600 and
    aerial_city (fixtures/real/csiq; the real csiq.DMOS.xlsx was not found), put in all_by_image order
    (image, then type, then level) with dst_type/dst_lev recovered from the names; dmos_std is made up."""
    real = pd.read_csv(REAL / "csiq" / "meta_info_CSIQDataset.csv", dtype=str)
    kinds = {token: (kind, idx) for kind, idx, _, token in TYPES + (("jpeg", 2, "jpeg", "JPEG"),
                                                                     ("fnoise", 4, "fnoise", "fnoise"),
                                                                     ("contrast", 6, "contrast", "contrast"))}
    rows = []
    for name, dmos in zip(real["dist_name"], real["dmos"]):
        image, token, level, _ = name.rsplit(".", 3)
        kind, idx = kinds[token]
        rows.append([int(image) if image.isdigit() else image, idx, kind, int(level), 0.01, float(dmos)])
        folder = {"AWGN": "awgn", "JPEG": "jpeg"}.get(token, token.lower())
        tiny_image(root / "dst_imgs" / folder / name, seed=len(rows), size=(8, 6))
    by_image = pd.DataFrame(rows, columns=HEADER).sort_values("image", key=lambda c: c.astype(str), kind="stable")
    with pd.ExcelWriter(root / "csiq.DMOS.xlsx", engine="openpyxl") as writer:
        by_image.to_excel(writer, sheet_name="all_by_image", startrow=3, startcol=3, index=False)
    return Layout(rows=len(rows), columns=COLUMNS, reference="ref_name")
