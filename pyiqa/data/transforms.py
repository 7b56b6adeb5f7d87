"""Build the per-image augmentation pipeline from a dataset's ``augment`` option.

The YAML form follows pyiqa (``augment: {hflip: true, random_crop: 224}``); keys are applied in the
order written. The ops themselves are torchvision's; randomness therefore comes from torch's global RNG,
which ``torch.manual_seed`` and the DataLoader's per-worker seeding make reproducible.
"""
from __future__ import annotations

import logging
import math
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import functional as TF

from ..utils.errors import ConfigError
from ..utils.registry import closest

logger = logging.getLogger(__name__)

Size = Union[int, Sequence[int]]

#: Keys whose op draws random numbers (evaluation with them is not deterministic).
RANDOM_KEYS = ("hflip", "vflip", "random_crop")


def _as_hw(value: Any, where: str) -> Tuple[int, int]:
    """An int or [h, w] of positive ints -> (h, w); ConfigError naming ``where`` otherwise."""
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value, value
    if (isinstance(value, (list, tuple)) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)):
        return int(value[0]), int(value[1])
    raise ConfigError(f"'{where}' must be a positive int or [height, width], got {value!r}")


class EnsureMinSize:
    """Upscale (keeping aspect ratio) so the image is at least ``h`` x ``w``; a no-op otherwise.

    Crops use this so a dataset with a few small images (AVA, AADB) does not crash mid-epoch.
    """

    def __init__(self, size: Tuple[int, int]):
        self.h, self.w = size

    def __call__(self, img: Image.Image) -> Image.Image:
        width, height = img.size
        if height >= self.h and width >= self.w:
            return img
        scale = max(self.h / height, self.w / width)
        new_hw = [max(self.h, math.ceil(height * scale)), max(self.w, math.ceil(width * scale))]
        return TF.resize(img, new_hw, interpolation=T.InterpolationMode.BICUBIC, antialias=True)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(h={self.h}, w={self.w})"


def _flip(cls: type) -> Callable[[Any, str], List[Callable]]:
    def make(value: Any, where: str) -> List[Callable]:
        if not isinstance(value, bool):
            raise ConfigError(f"'{where}' must be true or false, got {value!r}")
        return [cls(p=0.5)] if value else []
    return make


def _random_crop(value: Any, where: str) -> List[Callable]:
    size = _as_hw(value, where)
    return [EnsureMinSize(size), T.RandomCrop(size)]


def _center_crop(value: Any, where: str) -> List[Callable]:
    size = _as_hw(value, where)
    return [EnsureMinSize(size), T.CenterCrop(size)]


def _resize(value: Any, where: str) -> List[Callable]:
    h, w = _as_hw(value, where)
    # int -> shorter side (torchvision semantics); [h, w] -> exact size.
    size = [h] if isinstance(value, int) else [h, w]
    return [T.Resize(size, interpolation=T.InterpolationMode.BILINEAR, antialias=True)]


#: key -> factory(value, where) returning the torchvision ops for that key.
TRANSFORMS: Dict[str, Callable[[Any, str], List[Callable]]] = {
    "hflip": _flip(T.RandomHorizontalFlip),
    "vflip": _flip(T.RandomVerticalFlip),
    "random_crop": _random_crop,
    "center_crop": _center_crop,
    "resize": _resize,
}


def build_transform(augment: Optional[Dict[str, Any]], where: str) -> Callable[[Image.Image], Image.Image]:
    """Compose the ops named in ``augment`` (in dict order) into one PIL -> PIL callable.

    Args:
        augment: e.g. ``{'hflip': True, 'random_crop': 224}``; None or {} gives the identity.
        where: config path of ``augment`` (e.g. ``datasets.train.augment``) for error messages.

    Raises:
        ConfigError: unknown key (with the closest valid one) or a value of the wrong form.
    """
    if augment is None:
        augment = {}
    if not isinstance(augment, dict):
        raise ConfigError(f"'{where}' must be a mapping such as {{hflip: true, random_crop: 224}}, "
                          f"got {augment!r}")
    ops: List[Callable] = []
    for key, value in augment.items():
        if key not in TRANSFORMS:
            raise ConfigError(f"Unknown augmentation '{where}.{key}'.{closest(key, TRANSFORMS)} "
                              f"Valid keys: {sorted(TRANSFORMS)}")
        ops.extend(TRANSFORMS[key](value, f"{where}.{key}"))
    return T.Compose(ops)
