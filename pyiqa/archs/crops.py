"""Test-time crops: where the ``sample_size`` crops of an image are cut, and cutting them.

Pure functions of the crop options (``CropSpec``), so the model's eval ``forward``, the inference
metric and data-loading workers all cut exactly the same crops without needing the network.
"""
from __future__ import annotations

import dataclasses
import math
from typing import List, Tuple

import torch
import torch.nn.functional as F

# random10: seeded per image (reproducible); random10-global: the release's global-RNG draw.
TEST_CROPS = ("random10", "random10-global", "grid", "center", "five")
#: protocols that cut the same crops of an image every time (what the feature cache can store)
DETERMINISTIC_CROPS = ("random10", "grid", "center", "five")


@dataclasses.dataclass(frozen=True)
class CropSpec:
    """The test-crop protocol of a model; small and picklable for data-loading workers.

    Attributes:
        sample_size: side S of the square crops.
        test_crop: one of TEST_CROPS.
        num_crops: crops per image for 'random10', 'random10-global' and 'grid'.
        crop_seed: seed of 'random10'.
    """

    sample_size: int
    test_crop: str
    num_crops: int
    crop_seed: int


def make_crops(images: torch.Tensor, spec: CropSpec) -> torch.Tensor:
    """Test crops of one image (3, H, W) -> (K, 3, S, S), or of a batch (B, 3, H, W) -> (B, K, 3, S, S).

    The positions are drawn once per call, so the images of a batch share them (the release's
    'random10-global' draws once per batch). The dtype is kept (uint8 stays uint8: 4x less to move
    between processes), except that images with a side below S are first upscaled to float in [0, 1].
    """
    single = images.dim() == 3
    x = images[None] if single else images
    s = spec.sample_size
    if min(x.shape[-2:]) < s:
        x = upscale_short_side(to_unit_float(x), s)
    h, w = x.shape[-2:]
    positions = make_crop_positions(h, w, s, spec.test_crop, spec.num_crops, spec.crop_seed)
    crops = torch.stack([x[:, :, i:i + s, j:j + s] for i, j in positions], dim=1)  # (B, K, 3, S, S)
    return crops[0] if single else crops


def to_unit_float(x: torch.Tensor) -> torch.Tensor:
    """uint8 0-255 -> float32 [0, 1] (the same arithmetic as torchvision's to_tensor); floats -> float32."""
    return x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()


def upscale_short_side(x: torch.Tensor, s: int) -> torch.Tensor:
    """Bicubic resize of ``x`` (N, 3, H, W) keeping the aspect ratio so the shorter side is ``s``;
    returned unchanged when it already is at least ``s``. Result float in [0, 1]."""
    h, w = x.shape[-2:]
    if min(h, w) >= s:
        return x
    scale = s / min(h, w)
    size = (max(s, round(h * scale)), max(s, round(w * scale)))
    x = F.interpolate(x.float(), size=size, mode="bicubic", align_corners=False, antialias=True)
    return x.clamp(0.0, 1.0)  # bicubic overshoots the [0, 1] range


def make_crop_positions(h: int, w: int, sample_size: int, test_crop: str, num_crops: int,
                        crop_seed: int) -> List[Tuple[int, int]]:
    """(top, left) of each ``sample_size`` test crop of an h x w image (h, w >= sample_size)."""
    s = sample_size
    mh, mw = h - s, w - s  # largest valid top / left
    if test_crop == "center":
        return [(mh // 2, mw // 2)]
    if test_crop == "five":
        return [(mh // 2, mw // 2), (0, 0), (0, mw), (mh, 0), (mh, mw)]
    if test_crop == "grid":
        return _grid_positions(mh, mw, num_crops)
    # The release draws top then left per crop with torch.randint; 'random10' makes the same draws
    # from a generator reseeded for every image, so a score depends only on the image.
    gen = None
    if test_crop == "random10":
        gen = torch.Generator().manual_seed(crop_seed)
    positions = []
    for _ in range(num_crops):
        i = torch.randint(0, mh + 1, size=(1,), generator=gen).item()
        j = torch.randint(0, mw + 1, size=(1,), generator=gen).item()
        positions.append((int(i), int(j)))
    return positions


def _grid_positions(mh: int, mw: int, n: int) -> List[Tuple[int, int]]:
    """``n`` (top, left) positions spread evenly over [0, mh] x [0, mw] in a near-square grid.

    Uses rows x cols = n exactly when n factors with cols <= 3 rows (10 -> 2 x 5); otherwise the
    smallest near-square grid with >= n cells, thinned to n evenly spaced cells. The longer image
    side gets the larger count.
    """
    rows = max(r for r in range(1, int(math.isqrt(n)) + 1) if n % r == 0)
    cols = n // rows
    if cols > 3 * rows:
        rows = max(1, math.isqrt(n))
        cols = math.ceil(n / rows)
    if mh > mw:
        rows, cols = cols, rows
    cells = [(t, l) for t in _spread(mh, rows) for l in _spread(mw, cols)]
    if len(cells) > n:
        keep = torch.linspace(0, len(cells) - 1, n).round().long().tolist()
        cells = [cells[k] for k in keep]
    return cells


def _spread(m: int, k: int) -> List[int]:
    """``k`` offsets evenly spaced over [0, m]; a single one is centred."""
    if k == 1:
        return [m // 2]
    return torch.linspace(0, m, k).round().long().tolist()
