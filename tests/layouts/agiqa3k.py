"""AGIQA-3K as published: data.csv (name,prompt,adj1,adj2,style,mos_quality,std_quality,mos_align,std_align)
+ file/ with the JPEGs."""
from __future__ import annotations

import csv
from pathlib import Path

from . import Layout, tiny_image

COLUMNS = ["img_name", "mos", "std", "prompt", "adj1", "adj2", "style", "mos_align", "std_align", "generator"]
HEADER = ["name", "prompt", "adj1", "adj2", "style", "mos_quality", "std_quality", "mos_align", "std_align"]
GENERATORS = ["AttnGAN", "DALLE2", "glide", "midjourney", "sd1.5", "xl2.2"]
PROMPTS = [("statue of a man", "", "", ""),
           ("a river in a forest, anime style", "", "", "anime style"),
           ("a cat doing karaoke, warm color", "warm color", "", ""),
           ("portrait of a king, top view, close-up, baroque style", "top view", "close-up", "baroque style")]


def write(root: Path, per_generator: int = 2) -> Layout:
    """``per_generator`` images of each of the six generators; mos_quality and mos_align differ per row."""
    rows = []
    for g, generator in enumerate(GENERATORS):
        for i in range(per_generator):
            name = f"{generator}_normal_{i:03d}.jpg"
            prompt, adj1, adj2, style = PROMPTS[(g + i) % len(PROMPTS)]
            k = g * per_generator + i
            rows.append([name, prompt, adj1, adj2, style, f"{0.5 + 0.3 * k:.9f}", f"0.{300 + k}",
                         f"{4.2 - 0.2 * k:.9f}", f"0.{600 + k}"])
            tiny_image(root / "file" / name, seed=k)
    root.mkdir(parents=True, exist_ok=True)
    with open(root / "data.csv", "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")  # quotes the prompts that hold commas, as the release
        writer.writerow(HEADER)
        writer.writerows(rows)
    return Layout(rows=len(rows), columns=COLUMNS)
