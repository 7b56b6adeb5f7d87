"""``imread2tensor``: IQA-PyTorch's image reader (``pyiqa.utils.imread2tensor``), for scripts written
against it.

A path, the bytes of an encoded image or a PIL image -> a float tensor (C, H, W) in [0, 1] at the
stored size. ``rgb=False`` keeps gray images as 1 channel (metrics accept it) and RGBA as 4, as
IQA-PyTorch does; modes a tensor cannot hold directly (16-bit, float, palette, CMYK, 1-bit) follow
``pyiqa.data.image_io.to_rgb``. Files are opened only when they are regular files, with Pillow's
decompression-bomb limit kept.
"""
from __future__ import annotations

import io
from pathlib import Path
from typing import Union

import torch
from PIL import Image, UnidentifiedImageError
from torchvision.transforms import functional as TF

from ..data.image_io import to_rgb
from .errors import DataError

ImageSource = Union[str, Path, bytes, bytearray, memoryview, Image.Image]
_TENSOR_MODES = ("L", "LA", "RGB", "RGBA")  # modes to_tensor maps to [0, 1] channels as they are


def imread2pil(img_source: ImageSource, rgb: bool = False) -> Image.Image:
    """Open ``img_source`` as a decoded PIL image (converted to RGB when ``rgb``).

    Raises:
        DataError: not a regular file, not an image, or corrupt/truncated data (the message names the
            source). TypeError: a source of another type.
    """
    if isinstance(img_source, Image.Image):
        img, name = img_source, "PIL image"
    elif isinstance(img_source, (bytes, bytearray, memoryview)):
        img, name = _open(io.BytesIO(bytes(img_source)), f"{len(img_source)} bytes of image data")
    elif isinstance(img_source, (str, Path)):
        path = Path(img_source)
        if not path.is_file():
            raise DataError(f"Cannot read image '{path}': "
                            f"{'not a regular file' if path.exists() else 'file does not exist'}")
        img, name = _open(path, f"'{path}'")
    else:
        raise TypeError(f"imread2tensor reads a path (str or pathlib.Path), bytes or a PIL image, got "
                        f"{type(img_source).__name__}")
    if rgb:
        return to_rgb(img)
    if img.mode in _TENSOR_MODES:
        return img
    if (img.mode == "P" and "transparency" not in img.info) or img.mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        return img.convert("RGB")
    if img.mode == "P":
        return img.convert("RGBA")
    return to_rgb(img).convert("L")  # 1-bit, 16-bit and float gray stay gray, on the 8-bit scale


def imread2tensor(img_source: ImageSource, rgb: bool = False) -> torch.Tensor:
    """Read an image to a float32 tensor (C, H, W) in [0, 1] (C: 1 gray, 3 RGB, 4 RGBA; 3 if ``rgb``).

    ``metric(imread2tensor(path)[None])`` scores what ``metric(path)`` scores (both at the stored
    size; only the metric's ``max_side`` bound applies to both).
    """
    return TF.to_tensor(imread2pil(img_source, rgb))


def _open(source: Union[Path, io.BytesIO], name: str) -> tuple:
    try:
        img = Image.open(source)
        img.load()  # decode now: a truncated file fails here, naming the source
    except Image.DecompressionBombError as exc:
        raise DataError(f"Cannot read image {name}: {exc}") from exc
    except UnidentifiedImageError as exc:
        raise DataError(f"Cannot read image {name}: not a recognised image format") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise DataError(f"Cannot read image {name}: {exc}") from exc
    return img, name
