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

The one decoder, ``decode_image``, serves training (no size bound: the stored pixels) and inference
(``max_side``, 4096 px there): an image whose longer side exceeds ``max_side`` is returned downscaled to
it. JPEGs are then decoded directly at 1/2, 1/4 or 1/8 scale by libjpeg (PIL's ``draft``), so even a
20000 x 20000 JPEG never exists in memory at full size; other formats are decoded at full size and then
reduced (``Image.resize`` with ``reducing_gap``, i.e. ``Image.reduce`` first).

Decompression bombs: Pillow refuses images above ``2 * PIL.Image.MAX_IMAGE_PIXELS`` (~179 M pixels).
That limit is kept as the single source of truth and never changed here; for JPEGs it is applied to the
pixels actually decoded (after ``draft``), which is what memory depends on. To read a larger non-JPEG
image, raise the limit yourself (``PIL.Image.MAX_IMAGE_PIXELS = None``; CLI ``--max-image-pixels``).
"""
from __future__ import annotations

import io
import logging
import math
from pathlib import Path
from typing import BinaryIO, Optional, Union

import numpy as np
import torch
from PIL import Image, JpegImagePlugin, UnidentifiedImageError
from torchvision.transforms import functional as TF

from ..utils.errors import DataError

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]

_ALPHA_MODES = ("RGBA", "LA", "PA", "La", "RGBa")
_SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def decode_image(path: PathLike, max_side: Optional[int] = None) -> Image.Image:
    """Decode ``path`` to 8-bit RGB, its longer side at most ``max_side`` (None: the stored size).

    Raises:
        DataError: missing file, not an image, truncated or corrupt data, or a decompression bomb;
            the message names the file and the reason.
    """
    path = Path(path)
    if not path.is_file():
        reason = "is a directory" if path.is_dir() else "does not exist"
        raise DataError(f"Cannot read image '{path}': file {reason}")
    return _decode(str(path), str(path), max_side, _is_jpeg(path))


def decode_image_bytes(data: bytes, name: str, max_side: Optional[int] = None) -> Image.Image:
    """:func:`decode_image` for an image held in memory, e.g. a member of a tar shard; ``name`` labels
    it in errors (e.g. ``shards/00001.tar/000123.jpg``)."""
    if not data:
        raise DataError(f"Cannot read image '{name}': it is empty (0 bytes)")
    return _decode(io.BytesIO(data), name, max_side, data[:3] == b"\xff\xd8\xff")


def _decode(source: Union[str, BinaryIO], name: str, max_side: Optional[int], jpeg: bool) -> Image.Image:
    try:
        img = _open_jpeg(source, max_side) if jpeg else Image.open(source)
        with img:
            img.load()  # decode now so a truncated file fails here, not inside a transform
            rgb = to_rgb(img)
    except Image.DecompressionBombError as exc:
        raise DataError(f"Cannot read image '{name}': {exc} Non-JPEG images are decoded at full size "
                        "before downscaling; if you trust the file, raise the limit explicitly "
                        "(PIL.Image.MAX_IMAGE_PIXELS = None; CLI --max-image-pixels 0).") from exc
    except UnidentifiedImageError as exc:
        raise DataError(f"Cannot read image '{name}': not a recognised image format") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise DataError(f"Cannot read image '{name}': {exc}") from exc
    return downscale(rgb, max_side)


def _is_jpeg(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(3) == b"\xff\xd8\xff"


def _open_jpeg(source: Union[str, BinaryIO], max_side: Optional[int]) -> Image.Image:
    """Open a JPEG to be decoded at the smallest libjpeg scale that still covers ``max_side``.

    The JPEG plugin is used directly rather than through ``Image.open``, whose bomb check counts the
    full-size pixels; the same limit is applied here to the pixels that will really be decoded.
    """
    img = JpegImagePlugin.JpegImageFile(source)
    w, h = img.size
    if max_side is not None and max(w, h) > max_side:
        r = max_side / max(w, h)
        img.draft("RGB", (max(1, math.ceil(w * r)), max(1, math.ceil(h * r))))
    limit = Image.MAX_IMAGE_PIXELS
    if limit is not None and img.size[0] * img.size[1] > 2 * limit:
        img.close()
        raise Image.DecompressionBombError(
            f"Image size ({img.size[0] * img.size[1]} pixels decoded from {w}x{h}) exceeds limit of "
            f"{2 * limit} pixels, could be decompression bomb DOS attack.")
    return img


def downscale(img: Image.Image, max_side: Optional[int]) -> Image.Image:
    """Bicubic resize (box-reduced first) so the longer side is at most ``max_side`` (None: unchanged)."""
    w, h = img.size
    if max_side is None or max(w, h) <= max_side:
        return img
    r = max_side / max(w, h)
    size = (max(1, round(w * r)), max(1, round(h * r)))
    return img.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)


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
        ValueError: ``img`` is not RGB (call ``decode_image``/``to_rgb`` first).
    """
    if img.mode != "RGB":
        raise ValueError(f"to_tensor expects an RGB image, got mode '{img.mode}'; use to_rgb() first")
    return TF.to_tensor(img)
