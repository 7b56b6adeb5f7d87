"""AADB as published: imgListFiles_label/imgList{Train,Validation,TestNew}Regression_{score,<attribute>}.txt
('<image name> <value>' per line, no header) and datasetImages_originalSize/ with every image (the test
images repeated in AADB_newtest_originalSize/)."""
from __future__ import annotations

from pathlib import Path

from . import Layout, tiny_image

COLUMNS = ["img_name", "mos", "BalacingElements", "ColorHarmony", "Content", "DoF", "Light",
           "MotionBlur", "Object", "Repetition", "RuleOfThirds", "Symmetry", "VividColor"]
PARTS = {"Train": 10, "Validation": 3, "TestNew": 4}


def image_name(k: int) -> str:
    return f"farm{1 + k % 9}_{255 + k}_{19452343093 + 7919 * k}_{k:02x}e5e375_b.jpg"


def score(k: int) -> float:
    return round(0.05 * ((k * 7) % 19) + 0.025, 3)


def attribute(k: int, a: int) -> float:
    return round(((k + 3 * a) % 11 - 5) / 5, 1)


def write(root: Path) -> Layout:
    labels = root / "imgListFiles_label"
    labels.mkdir(parents=True, exist_ok=True)
    k = 0
    for part, count in PARTS.items():
        names = [image_name(k + i) for i in range(count)]
        for a, column in enumerate(["score"] + COLUMNS[2:]):
            lines = [f"{n} {score(k + i) if a == 0 else attribute(k + i, a)}" for i, n in enumerate(names)]
            (labels / f"imgList{part}Regression_{column}.txt").write_text("\n".join(lines) + "\n")
        for i, n in enumerate(names):
            tiny_image(root / "datasetImages_originalSize" / n, seed=k + i)
            if part == "TestNew":
                tiny_image(root / "AADB_newtest_originalSize" / n, seed=k + i)
        k += count
    return Layout(rows=k, columns=COLUMNS, official=True)
