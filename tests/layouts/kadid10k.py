"""KADID-10k as published: dmos.csv (dist_img,ref_img,dmos,var) + images/ with references too."""
from __future__ import annotations

from pathlib import Path

from . import Layout, tiny_image

REAL = Path(__file__).resolve().parent.parent / "fixtures" / "real"  # excerpts; see their SOURCE.md

COLUMNS = ["ref_name", "dist_name", "dmos", "std", "distortion_type", "distortion_level"]


def write(root: Path, refs: int = 6, types: int = 2, levels: int = 2) -> Layout:
    lines = ["dist_img,ref_img,dmos,var"]
    seed = 0
    for r in range(1, refs + 1):
        tiny_image(root / "images" / f"I{r:02d}.png", seed=1000 + r)
        for t in range(1, types + 1):
            for lv in range(1, levels + 1):
                name = f"I{r:02d}_{t:02d}_{lv:02d}.png"
                lines.append(f"{name},I{r:02d}.png,{5 - lv * 0.7 - t * 0.1:.2f},0.{400 + seed}")
                tiny_image(root / "images" / name, seed=seed)
                seed += 1
    (root / "dmos.csv").write_text("\n".join(lines) + "\n")
    return Layout(rows=refs * types * levels, columns=COLUMNS, reference="ref_name")


def write_real(root: Path) -> Layout:
    """dmos.csv re-written from real rows: IQA-PyTorch's first 30 published KADID-10k rows (fixtures/real/
    kadid10k; the real dmos.csv was not found), columns back in the release's order dist_img,ref_img,dmos,var."""
    lines = (REAL / "kadid10k" / "meta_info_KADID10kDataset.csv").read_text().splitlines()[1:]
    out = ["dist_img,ref_img,dmos,var"]
    for line in lines:
        ref, dist, dmos, std = line.split(",")
        out.append(f"{dist},{ref},{dmos},{std}")
        tiny_image(root / "images" / dist, seed=len(out), size=(8, 6))
    tiny_image(root / "images" / "I01.png", seed=0, size=(8, 6))
    (root / "dmos.csv").write_text("\n".join(out) + "\n")
    return Layout(rows=len(lines), columns=COLUMNS, reference="ref_name")
