"""AADB as published: imgListFiles_label/imgList{Train,Validation,TestNew}Regression_{score,<attribute>}.txt
('<image name> <value>' per line, no header), datasetImages_originalSize/ with the train and validation
images and AADB_newtest_originalSize/ with the test images, named with their score as a 3-decimal prefix."""
from __future__ import annotations

from pathlib import Path

from . import Layout, tiny_image

COLUMNS = ["img_name", "mos", "BalacingElements", "ColorHarmony", "Content", "DoF", "Light",
           "MotionBlur", "Object", "Repetition", "RuleOfThirds", "Symmetry", "VividColor"]
PARTS = {"Train": 10, "Validation": 3, "TestNew": 4}


def image_name(k: int) -> str:
    return f"farm{1 + k % 9}_{255 + k}_{19452343093 + 7919 * k}_{k:02x}e5e375_b.jpg"


def path(k: int) -> str:
    """Where the k-th listed image is, relative to the root (what the meta CSV names)."""
    if k < PARTS["Train"] + PARTS["Validation"]:
        return f"datasetImages_originalSize/{image_name(k)}"
    return f"AADB_newtest_originalSize/{score(k):.3f}_{image_name(k)}"


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
            if part == "TestNew":
                tiny_image(root / "AADB_newtest_originalSize" / f"{score(k + i):.3f}_{n}", seed=k + i)
            else:
                tiny_image(root / "datasetImages_originalSize" / n, seed=k + i)
        k += count
    return Layout(rows=k, columns=COLUMNS, official=True)
