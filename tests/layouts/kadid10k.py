"""KADID-10k as published: dmos.csv (dist_img,ref_img,dmos,var) + images/ with references too."""
from __future__ import annotations

from pathlib import Path

from . import Layout, tiny_image

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
