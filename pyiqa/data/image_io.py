"""Read any image file an IQA dataset may contain as 8-bit RGB.

Quality datasets mix formats: grayscale and 16-bit PNGs (TID2013/CSIQ style references), palette GIF-like
PNGs, RGBA screenshots, CMYK JPEGs. The model sees 8-bit RGB in [0, 1], so every mode is converted here,
in one place, with the rules written down:

* grayscale (``1``, ``L``) is replicated to three channels;
* 16-bit grayscale (``I;16*``, and ``I`` which Pillow uses for 16-bit PNG/TIFF) is *scaled*
  0-65535 -> 0-255 (``round(v / 257)``), never clipped, so a 16-bit image keeps its contrast;
* float (``F``) is taken as [0, 1] when its maximum is <= 1, else as 0-255;
* images with alpha (``RGBA``, ``LA``, ``PA``, palette with a transparency entry) are composited
  on white and the alpha is then dropped: transparent pixels would otherwise show whatever colour
  happens to be stored under them (often black), which is not what a viewer rated;
* ``CMYK``, ``YCbCr`` and other modes go through Pillow's ``convert('RGB')``.

16-bit RGB PNGs are decoded by Pillow to 8-bit RGB already (high byte). EXIF orientation is not applied,
matching the pyiqa release (MOS were collected on the stored pixels).
"""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Union

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torchvision.transforms import functional as TF

from ..utils.errors import DataError

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]

_ALPHA_MODES = ("RGBA", "LA", "PA", "La", "RGBa")
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def load_image(path: PathLike) -> Image.Image:
    """Open ``path`` and return a fully decoded 8-bit RGB image.

    Raises:
        DataError: the file is missing, is not an image, or is truncated/corrupt; the message names
            the path and the reason.
    """
    path = Path(path)
    if not path.is_file():
        reason = "is a directory" if path.is_dir() else "does not exist"
        raise DataError(f"Cannot read image '{path}': file {reason}")
    try:
        with Image.open(path) as img:
            img.load()  # decode now so a truncated file fails here, not inside a transform
            return to_rgb(img)
    except UnidentifiedImageError as exc:
        raise DataError(f"Cannot read image '{path}': not a recognised image format") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"Cannot read image '{path}': {exc}") from exc


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert an image of any Pillow mode to 8-bit RGB following the module's rules."""
    mode = img.mode
    if mode == "RGB":
        return img.copy()
    if mode in _SIXTEEN_BIT_MODES:
        arr = np.asarray(img, dtype=np.float64)
        return _gray_array_to_rgb(np.round(arr / 257.0))
    if mode == "F":
        arr = np.asarray(img, dtype=np.float64)
        scale = 255.0 if arr.size and np.nanmax(arr) <= 1.0 else 1.0
        return _gray_array_to_rgb(np.round(arr * scale))
    if mode == "P" and "transparency" in img.info:
        img, mode = img.convert("RGBA"), "RGBA"
    if mode in _ALPHA_MODES:
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    try:
        return img.convert("RGB")
    except ValueError as exc:
        raise DataError(f"Cannot convert image mode '{mode}' to RGB: {exc}") from exc


def _gray_array_to_rgb(arr: np.ndarray) -> Image.Image:
    """An (H, W) array already on the 0-255 scale -> RGB image (values outside are clipped)."""
    gray = np.clip(arr, 0, 255).astype(np.uint8)
    return Image.fromarray(np.stack([gray] * 3, axis=-1))


def to_tensor(img: Image.Image) -> torch.Tensor:
    """RGB PIL image -> float32 tensor (3, H, W) in [0, 1].

    Raises:
        ValueError: ``img`` is not RGB (call ``load_image``/``to_rgb`` first).
    """
    if img.mode != "RGB":
        raise ValueError(f"to_tensor expects an RGB image, got mode '{img.mode}'; use to_rgb() first")
    return TF.to_tensor(img)
