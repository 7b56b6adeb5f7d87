"""What users hand to a metric (paths, PIL images, numpy arrays, tensors) -> RGB tensors.

Decoding is bounded: an image whose longer side exceeds ``max_side`` (default 4096 px) is scored on a
copy downscaled to ``max_side``. Files are read by the one decoder, ``pyiqa.data.image_io.decode_image``
(JPEGs decoded reduced by libjpeg, decompression-bomb limit kept), and colour modes follow
``pyiqa.data.image_io.to_rgb`` (grayscale replicated, 16-bit scaled, alpha composited on white, CMYK
converted), so the metric sees exactly what training saw. Test crops are cut by
``pyiqa.archs.crops.make_crops``.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, List, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..data.image_io import decode_image, downscale, to_rgb
from ..utils.errors import DataError

DEFAULT_MAX_SIDE = 4096
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm",
                    ".pgm", ".pnm", ".jfif")
# Values this far outside [0, 1] are accepted as float rounding (e.g. after a resize).
RANGE_TOLERANCE = 1e-4

PathLike = Union[str, Path]


class InputError(DataError, ValueError):
    """An input given to a metric has the wrong type, shape or value range."""


# ------------------------------------------------------------------------------------------ inputs
def split_inputs(x: Any) -> List[Any]:
    """Flatten an input into one item per image (a path, PIL image, HxWxC array or (3, H, W) tensor).

    Lists/tuples may mix types and sizes; 4-D tensors (N, 3, H, W) and 4-D uint8 arrays
    (N, H, W, 3) count as N images. Items are decoded later, in batches (``load_item``).
    """
    if isinstance(x, (list, tuple)):
        items: List[Any] = []
        for element in x:
            if isinstance(element, (list, tuple)):
                raise InputError("Nested lists of images are not supported; pass one flat list.")
            items.extend(split_inputs(element))
        return items
    if torch.is_tensor(x) and x.dim() == 4:
        return list(x.unbind(0))
    if isinstance(x, np.ndarray) and x.ndim == 4:
        return list(x)
    return [x]


def load_item(item: Any, max_side: Optional[int] = DEFAULT_MAX_SIDE,
              check_range: bool = True) -> torch.Tensor:
    """One image -> (3, H, W) tensor: uint8 from files/PIL/uint8 arrays, float in [0, 1] otherwise.

    ``check_range=False`` (IQA-PyTorch's ``check_input_range``, off for losses) passes float tensors
    through unchecked and unclamped, so a loss on unnormalised values keeps its gradient.

    Raises:
        DataError: unreadable file. InputError: wrong type, shape, dtype or value range.
    """
    if isinstance(item, (str, Path)):
        return pil_to_tensor(decode_image(item, max_side))
    if isinstance(item, Image.Image):
        _check_not_empty(item.height, item.width, f"PIL image of size {item.size} (W, H)")
        return pil_to_tensor(downscale(to_rgb(item), max_side))
    if isinstance(item, np.ndarray):
        return _array_to_tensor(item, max_side, check_range)
    if torch.is_tensor(item):
        return _check_tensor(item, max_side, check_range=check_range)
    raise InputError(f"Cannot score an input of type {type(item).__name__}: pass a path (str or "
                     "pathlib.Path), a PIL image, a numpy HxWx3 uint8 array, a tensor (N, 3, H, W) in "
                     "[0, 1], or a list of these.")


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """RGB PIL image -> uint8 tensor (3, H, W)."""
    return torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1)


def _array_to_tensor(arr: np.ndarray, max_side: Optional[int], check_range: bool = True) -> torch.Tensor:
    shape = tuple(arr.shape)
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
        raise InputError(f"numpy images are channels-last HxWx3; got shape {shape}, which looks "
                         "channels-first: pass arr.transpose(1, 2, 0).")
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (1, 3, 4)):
        raise InputError(f"numpy images must be HxWx3 (RGB), HxW or HxWx1 (gray) or HxWx4 (RGBA); got "
                         f"shape {shape}.")
    _check_not_empty(arr.shape[0], arr.shape[1], f"numpy array of shape {shape}")
    if arr.dtype == np.uint8:
        if arr.ndim == 3 and arr.shape[-1] == 1:
            arr = arr[..., 0]
        return pil_to_tensor(downscale(to_rgb(Image.fromarray(np.ascontiguousarray(arr))), max_side))
    if np.issubdtype(arr.dtype, np.floating):
        if arr.ndim == 2 or arr.shape[-1] == 1:
            arr = np.repeat(arr.reshape(arr.shape[0], arr.shape[1], 1), 3, axis=-1)
        if arr.shape[-1] != 3:
            raise InputError(f"float numpy images must be HxWx3 or gray, got shape {shape}; convert "
                             "RGBA with PIL first.")
        return _check_tensor(torch.from_numpy(np.ascontiguousarray(arr, dtype=np.float32))
                             .permute(2, 0, 1), max_side, what="numpy array", check_range=check_range)
    raise InputError(f"numpy images must be uint8 (0-255) or float in [0, 1]; got dtype {arr.dtype}.")


def _check_not_empty(height: int, width: int, what: str) -> None:
    """An image without pixels has no crops to score (and would divide by zero when resized)."""
    if height < 1 or width < 1:
        raise InputError(f"Empty image: {what} has height {height} and width {width}; every image "
                         "needs at least 1x1 pixels (check the crop or slice that produced it).")


def _check_tensor(x: torch.Tensor, max_side: Optional[int], what: str = "tensor",
                  check_range: bool = True) -> torch.Tensor:
    """Validate a (3, H, W) or gray (1, H, W) image tensor (replicated to RGB, as IQA-PyTorch accepts
    1-channel input); bound its size (differentiably) by ``max_side``."""
    if x.dim() != 3:
        raise InputError(f"Image {what}s must be (N, 3, H, W) or (3, H, W) (or 1 gray channel); got "
                         f"shape {tuple(x.shape)}.")
    if x.shape[0] == 1:
        x = x.expand(3, -1, -1)
    if x.shape[0] != 3:
        hint = {4: " Drop the alpha channel: x[:3] (or x[:, :3] on a batch)."}.get(x.shape[0], "")
        if x.shape[-1] in (1, 3, 4) and x.shape[0] != 4:
            hint = " Channels come first in tensors: use x.permute(2, 0, 1) for an HxWxC image."
        raise InputError(f"Image {what}s need 3 (RGB) or 1 (gray) channels first, got shape "
                         f"{tuple(x.shape)} ({x.shape[0]} channels).{hint}")
    if min(x.shape[-2:]) < 1:
        raise InputError(f"Empty image {what} of shape {tuple(x.shape)}.")
    if x.dtype == torch.uint8:
        return _bound_tensor(x, max_side)
    if not x.is_floating_point():
        raise InputError(f"Image {what}s must be float in [0, 1] (or uint8 0-255); got {x.dtype}.")
    if not check_range:
        return _bound_tensor(x, max_side, clamp=False)
    with torch.no_grad():
        lo, hi = x.min().item(), x.max().item()
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise InputError(f"Image {what} holds NaN or infinite values.")
    if lo < -RANGE_TOLERANCE or hi > 1 + RANGE_TOLERANCE:
        hint = (" It looks like 0-255 values: divide by 255." if hi > 1.5 and lo >= 0 else
                " It looks like [-1, 1] values: use (x + 1) / 2." if lo >= -1.0 - 1e-3 else "")
        raise InputError(f"Image {what}s must hold values in [0, 1]; got min {lo:.4g}, max {hi:.4g}."
                         f"{hint}")
    return _bound_tensor(x, max_side)


def _bound_tensor(x: torch.Tensor, max_side: Optional[int], clamp: bool = True) -> torch.Tensor:
    h, w = x.shape[-2:]
    if max_side is None or max(h, w) <= max_side:
        return x
    r = max_side / max(h, w)
    size = (max(1, round(h * r)), max(1, round(w * r)))
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
    x = F.interpolate(x[None], size=size, mode="bicubic", align_corners=False, antialias=True)[0]
    return x.clamp(0.0, 1.0) if clamp else x


def list_images(folder: PathLike, recursive: bool = False) -> List[Path]:
    """Files with an image extension in ``folder``, sorted (case-insensitive extension match)."""
    folder = Path(folder)
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in folder.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def chunks(items: Sequence[Any], size: int) -> List[Sequence[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]
