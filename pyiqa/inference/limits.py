"""Bounds of the scoring options that ``create_metric`` and the ``pyiqa`` command both check (torch-free,
so the command refuses a bad value before it imports torch or reads a weight file)."""
from __future__ import annotations

from typing import Any

from ..utils.options import check_int

#: Crops per image: the release scores 10. Each crop is one backbone forward pass and every crop position
#: is drawn in Python, so 10**8 would run for hours instead of failing; 1000 is far beyond any protocol.
MAX_NUM_CROPS = 1000


def check_num_crops(value: Any, where: str = "num_crops") -> int:
    """``value`` as crops per image, an integer in [1, MAX_NUM_CROPS]; ConfigError naming ``where``."""
    return check_int(value, where, 1, integral_floats=False, maximum=MAX_NUM_CROPS)
