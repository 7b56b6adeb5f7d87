"""Fixture writers: each module writes one dataset in its authors' published layout (annotation files
with their real names, headers, MAT variables or XLSX sheets; a handful of rows; tiny images), as
``write(root) -> Layout``, for the preparer tests and the shipped-config tests."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import List, Optional

import numpy as np
from PIL import Image


@dataclasses.dataclass
class Layout:
    """What a fixture holds, for the assertions: benchmark rows and the leading rows outside it."""

    rows: int
    columns: List[str]
    lead: int = 0
    reference: Optional[str] = None
    official: bool = False


def tiny_image(path: Path, seed: int, size=(40, 30)) -> None:
    """A small random RGB image in the format the suffix names (png, bmp, jpg)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = np.random.default_rng(seed).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    Image.fromarray(pixels).save(path)
