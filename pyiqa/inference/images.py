"""What users hand to a metric (paths, PIL images, numpy arrays, tensors) -> RGB tensors -> test crops.

Decoding is bounded: an image whose longer side exceeds ``max_side`` (default 4096 px) is scored on a
copy downscaled to ``max_side``. JPEGs are decoded directly at 1/2, 1/4 or 1/8 scale by libjpeg (PIL's
``draft``), so even a 20000 x 20000 JPEG never exists in memory at full size; other formats are decoded
at full size and then reduced (``Image.resize`` with ``reducing_gap``, i.e. ``Image.reduce`` first).

Decompression bombs: Pillow refuses images above ``2 * PIL.Image.MAX_IMAGE_PIXELS`` (~179 M pixels).
That limit is kept as the single source of truth and is never changed here; for JPEGs it is applied
to the pixels actually decoded (after ``draft``), which is what memory depends on. To score a larger
non-JPEG image, raise the limit yourself (``PIL.Image.MAX_IMAGE_PIXELS = None``; CLI
``--max-image-pixels``).

Colour modes follow ``pyiqa.data.image_io.to_rgb`` (grayscale replicated, 16-bit scaled, alpha
composited on white, CMYK converted), so the metric sees exactly what training saw.
"""
from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, List, Optional, Sequence, Union

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, JpegImagePlugin, UnidentifiedImageError

from ..archs.uniqa_arch import make_crop_positions, upscale_short_side
from ..data.image_io import to_rgb
from ..utils.errors import DataError

DEFAULT_MAX_SIDE = 4096
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".gif", ".ppm",
                    ".pgm", ".pnm", ".jfif")
# Values this far outside [0, 1] are accepted as float rounding (e.g. after a resize).
RANGE_TOLERANCE = 1e-4

PathLike = Union[str, Path]


class InputError(DataError, ValueError):
    """An input given to a metric has the wrong type, shape or value range."""


@dataclasses.dataclass(frozen=True)
class CropSpec:
    """The test-crop protocol of a model, small and picklable for data-loading workers."""

    sample_size: int
    test_crop: str
    num_crops: int
    crop_seed: int

    @classmethod
    def of(cls, net: Any) -> "CropSpec":
        return cls(net.sample_size, net.test_crop, net.num_crops, net.crop_seed)


# ------------------------------------------------------------------------------------------ decoding
def decode_image(path: PathLike, max_side: Optional[int] = DEFAULT_MAX_SIDE) -> Image.Image:
    """Decode ``path`` to 8-bit RGB with its longer side at most ``max_side`` (None: no bound).

    Raises:
        DataError: missing file, not an image, truncated or corrupt data, or a decompression bomb;
            the message names the file and the reason.
    """
    path = Path(path)
    if not path.is_file():
        reason = "is a directory" if path.is_dir() else "does not exist"
        raise DataError(f"Cannot read image '{path}': file {reason}")
    try:
        img = _open_jpeg(path, max_side) if _is_jpeg(path) else Image.open(path)
        with img:
            img.load()  # decode now so a truncated file fails here
            rgb = to_rgb(img)
    except Image.DecompressionBombError as exc:
        raise DataError(f"Cannot read image '{path}': {exc} Non-JPEG images are decoded at full size "
                        "before downscaling; if you trust the file, raise the limit explicitly "
                        "(PIL.Image.MAX_IMAGE_PIXELS = None; CLI --max-image-pixels 0).") from exc
    except UnidentifiedImageError as exc:
        raise DataError(f"Cannot read image '{path}': not a recognised image format") from exc
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise DataError(f"Cannot read image '{path}': {exc}") from exc
    return downscale(rgb, max_side)


def _is_jpeg(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(3) == b"\xff\xd8\xff"


def _open_jpeg(path: Path, max_side: Optional[int]) -> Image.Image:
    """Open a JPEG to be decoded at the smallest libjpeg scale that still covers ``max_side``.

    The JPEG plugin is used directly rather than through ``Image.open``, whose bomb check counts the
    full-size pixels; the same limit is applied here to the pixels that will really be decoded.
    """
    img = JpegImagePlugin.JpegImageFile(str(path))
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
    """Bicubic resize (box-reduced first) so the longer side is at most ``max_side``."""
    w, h = img.size
    if max_side is None or max(w, h) <= max_side:
        return img
    r = max_side / max(w, h)
    size = (max(1, round(w * r)), max(1, round(h * r)))
    return img.resize(size, Image.Resampling.BICUBIC, reducing_gap=3.0)


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


def load_item(item: Any, max_side: Optional[int] = DEFAULT_MAX_SIDE) -> torch.Tensor:
    """One image -> (3, H, W) tensor: uint8 from files/PIL/uint8 arrays, float in [0, 1] otherwise.

    Raises:
        DataError: unreadable file. InputError: wrong type, shape, dtype or value range.
    """
    if isinstance(item, (str, Path)):
        return pil_to_tensor(decode_image(item, max_side))
    if isinstance(item, Image.Image):
        return pil_to_tensor(downscale(to_rgb(item), max_side))
    if isinstance(item, np.ndarray):
        return _array_to_tensor(item, max_side)
    if torch.is_tensor(item):
        return _check_tensor(item, max_side)
    raise InputError(f"Cannot score an input of type {type(item).__name__}: pass a path (str or "
                     "pathlib.Path), a PIL image, a numpy HxWx3 uint8 array, a tensor (N, 3, H, W) in "
                     "[0, 1], or a list of these.")


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """RGB PIL image -> uint8 tensor (3, H, W)."""
    return torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1)


def _array_to_tensor(arr: np.ndarray, max_side: Optional[int]) -> torch.Tensor:
    shape = tuple(arr.shape)
    if arr.ndim == 3 and arr.shape[0] in (1, 3, 4) and arr.shape[-1] not in (1, 3, 4):
        raise InputError(f"numpy images are channels-last HxWx3; got shape {shape}, which looks "
                         "channels-first: pass arr.transpose(1, 2, 0).")
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[-1] not in (1, 3, 4)):
        raise InputError(f"numpy images must be HxWx3 (RGB), HxW or HxWx1 (gray) or HxWx4 (RGBA); got "
                         f"shape {shape}.")
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
                             .permute(2, 0, 1), max_side, what="numpy array")
    raise InputError(f"numpy images must be uint8 (0-255) or float in [0, 1]; got dtype {arr.dtype}.")


def _check_tensor(x: torch.Tensor, max_side: Optional[int], what: str = "tensor") -> torch.Tensor:
    """Validate a (3, H, W) image tensor; bound its size (differentiably) by ``max_side``."""
    if x.dim() != 3:
        raise InputError(f"Image {what}s must be (N, 3, H, W) or (3, H, W); got shape {tuple(x.shape)}.")
    if x.shape[0] != 3:
        hint = {1: " For grayscale use x.expand(3, -1, -1) (or x.repeat(1, 3, 1, 1) on a batch).",
                4: " Drop the alpha channel: x[:3] (or x[:, :3] on a batch)."}.get(x.shape[0], "")
        if x.shape[-1] in (1, 3, 4) and x.shape[0] not in (1, 4):
            hint = " Channels come first in tensors: use x.permute(2, 0, 1) for an HxWxC image."
        raise InputError(f"Image {what}s need 3 (RGB) channels first, got shape "
                         f"{tuple(x.shape)} ({x.shape[0]} channels).{hint}")
    if min(x.shape[-2:]) < 1:
        raise InputError(f"Empty image {what} of shape {tuple(x.shape)}.")
    if x.dtype == torch.uint8:
        return _bound_tensor(x, max_side)
    if not x.is_floating_point():
        raise InputError(f"Image {what}s must be float in [0, 1] (or uint8 0-255); got {x.dtype}.")
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


def _bound_tensor(x: torch.Tensor, max_side: Optional[int]) -> torch.Tensor:
    h, w = x.shape[-2:]
    if max_side is None or max(h, w) <= max_side:
        return x
    r = max_side / max(h, w)
    size = (max(1, round(h * r)), max(1, round(w * r)))
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
    x = F.interpolate(x[None], size=size, mode="bicubic", align_corners=False, antialias=True)[0]
    return x.clamp(0.0, 1.0)


# ------------------------------------------------------------------------------------------ crops
def make_crops(img: torch.Tensor, spec: CropSpec) -> torch.Tensor:
    """Test crops of one image (3, H, W) -> (K, 3, S, S), same dtype (uint8 stays uint8: 4x less
    to move between processes). Images with a side below S are first upscaled (float in [0, 1])."""
    s = spec.sample_size
    if min(img.shape[-2:]) < s:
        img = img.float() / 255.0 if img.dtype == torch.uint8 else img
        img = upscale_short_side(img[None], s)[0]
    h, w = img.shape[-2:]
    positions = make_crop_positions(h, w, s, spec.test_crop, spec.num_crops, spec.crop_seed)
    return torch.stack([img[:, i:i + s, j:j + s] for i, j in positions])


def to_unit_float(crops: torch.Tensor) -> torch.Tensor:
    """uint8 0-255 -> float32 [0, 1] (the same arithmetic as torchvision's to_tensor)."""
    return crops.float().div_(255.0) if crops.dtype == torch.uint8 else crops.float()


def list_images(folder: PathLike, recursive: bool = False) -> List[Path]:
    """Files with an image extension in ``folder``, sorted (case-insensitive extension match)."""
    folder = Path(folder)
    pattern = "**/*" if recursive else "*"
    return sorted(p for p in folder.glob(pattern) if p.is_file() and p.suffix.lower() in IMAGE_EXTENSIONS)


def chunks(items: Sequence[Any], size: int) -> List[Sequence[Any]]:
    return [items[i:i + size] for i in range(0, len(items), size)]
