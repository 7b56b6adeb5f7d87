"""A small, download-free IQA dataset built from scikit-image's bundled colour photographs.

Purpose: run the whole train/evaluate pipeline (tests, tutorials, smoke checks on a new machine)
without fetching a benchmark. 10 contents x (1 pristine + 4 distortions x 3 levels) = 130 PNGs of
384x288, with MOS set from the distortion level, and 10 content-disjoint splits in pyiqa's forms:
80/20 train/test as split columns ``ratio802_seed123_split_NN`` and as the split pickle, and an honest
70/10/20 train/val/test variant (one more content held out for validation) as split columns
``ratio712_seed123_split_NN``. Output is deterministic (seeded noise).

The distortions are global ones (darkening, colour loss, contrast loss, strong noise; KADID-10k has all
four kinds) because the demo's backbone is a tiny CLIP with random weights: its embedding registers an
image's global colour statistics but barely moves under blur or JPEG (cosine distance pristine ->
heaviest level, averaged over the 10 contents: darken 0.107, contrast 0.018-0.046, desaturate 0.035,
noise 0.003-0.011, blur 0.0004, JPEG 0.0007), so with blur and JPEG the adapter had nothing to learn.

Usage: ``python -m pyiqa.data.demo_dataset --root datasets/demo``
"""
from __future__ import annotations

import argparse
import functools
import io
import itertools
import json
import logging
import pickle
import shutil
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import pandas as pd
from PIL import Image, ImageEnhance, ImageFilter

from ..utils.errors import OutputError
from .splits import split_column_prefix

logger = logging.getLogger(__name__)

BUILD_VERSION = 3  # bump when the output changes, so existing builds are redone
SIZE = (384, 288)  # (W, H), 4:3 like KonIQ
SEED = 123
NUM_SPLITS = 10
TEST_CONTENTS = 2  # of 10 -> 80/20
MARKER = ".complete"

# content name -> (skimage.data function, (left, top, right, bottom) region in fractions of W/H).
# Large images are tiled into non-overlapping regions to get 10 distinct contents from 8 photographs.
CONTENTS: Dict[str, Tuple[str, Tuple[float, float, float, float]]] = {
    "astronaut": ("astronaut", (0.0, 0.0, 1.0, 1.0)),
    "coffee": ("coffee", (0.0, 0.0, 1.0, 1.0)),
    "chelsea": ("chelsea", (0.0, 0.0, 1.0, 1.0)),
    "rocket": ("rocket", (0.0, 0.0, 1.0, 1.0)),
    "motorcycle": ("stereo_motorcycle", (0.0, 0.0, 1.0, 1.0)),
    "immunohistochemistry": ("immunohistochemistry", (0.0, 0.0, 1.0, 1.0)),
    "hubble_top": ("hubble_deep_field", (0.0, 0.0, 1.0, 0.5)),
    "hubble_bottom": ("hubble_deep_field", (0.0, 0.5, 1.0, 1.0)),
    "retina_right": ("retina", (0.5, 0.2, 0.95, 0.6)),   # vessels only
    "retina_left": ("retina", (0.05, 0.4, 0.5, 0.8)),    # optic disc; columns disjoint from the right tile
}

LEVELS = (1, 2, 3)
# distortion -> (parameter per level, MOS offset); contrast reduction is rated a little milder.
DISTORTIONS: Dict[str, Tuple[Sequence[float], float]] = {
    "darken": ((0.75, 0.5, 0.25), 0.0),       # brightness factor (1 = unchanged)
    "desaturate": ((0.5, 0.2, 0.0), 2.0),     # colour saturation factor (0 = grey)
    "contrast": ((0.6, 0.35, 0.15), 3.0),     # contrast factor (1 = unchanged)
    "gnoise": ((20.0, 50.0, 100.0), -2.0),    # noise std on the 0-255 scale
}
PRISTINE_MOS = 90.0
LEVEL_MOS = {1: 68.0, 2: 45.0, 3: 21.0}


@functools.lru_cache(maxsize=2)
def skimage_photo(func_name: str) -> Image.Image:
    """A bundled skimage photograph (no download) as RGB."""
    from skimage import data as skdata  # only this builder needs scikit-image

    arr = getattr(skdata, func_name)()
    if isinstance(arr, tuple):  # stereo_motorcycle -> (left, right, disparity): left view only
        arr = arr[0]
    return Image.fromarray(np.ascontiguousarray(arr[..., :3]))


def _load_content(func_name: str, region: Tuple[float, float, float, float]) -> Image.Image:
    """Crop ``region`` of a skimage photo to 4:3 around its centre and resize to ``SIZE``."""
    img = skimage_photo(func_name)
    w, h = img.size
    left, top, right, bottom = (round(region[0] * w), round(region[1] * h),
                                round(region[2] * w), round(region[3] * h))
    rw, rh = right - left, bottom - top
    target = SIZE[0] / SIZE[1]
    cw, ch = (rw, round(rw / target)) if rw / rh < target else (round(rh * target), rh)
    x0, y0 = left + (rw - cw) // 2, top + (rh - ch) // 2
    return img.crop((x0, y0, x0 + cw, y0 + ch)).resize(SIZE, Image.Resampling.LANCZOS)


def distort_image(img: Image.Image, kind: str, param: float, rng: np.random.Generator) -> Image.Image:
    """``img`` with one distortion of strength ``param``: 'darken' (brightness factor), 'desaturate'
    (colour factor), 'contrast' (factor), 'gnoise' (std on 0-255), 'gblur' (radius) or 'jpeg' (quality);
    noise drawn from ``rng``."""
    if kind == "darken":
        return ImageEnhance.Brightness(img).enhance(param)
    if kind == "desaturate":
        return ImageEnhance.Color(img).enhance(param)
    if kind == "gblur":
        return img.filter(ImageFilter.GaussianBlur(radius=param))
    if kind == "gnoise":
        arr = np.asarray(img, dtype=np.float64) + rng.normal(0.0, param, size=(img.height, img.width, 3))
        return Image.fromarray(np.clip(np.round(arr), 0, 255).astype(np.uint8))
    if kind == "jpeg":
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=int(param))
        buf.seek(0)
        with Image.open(buf) as decoded:
            return decoded.convert("RGB")
    if kind == "contrast":
        return ImageEnhance.Contrast(img).enhance(param)
    raise ValueError(f"unknown distortion {kind!r}")


def _content_splits() -> List[List[str]]:
    """NUM_SPLITS distinct sets of test contents, drawn with a seeded RNG (content-disjoint splits)."""
    names = list(CONTENTS)
    pairs = list(itertools.combinations(names, TEST_CONTENTS))
    rng = np.random.default_rng(SEED)
    picks = rng.choice(len(pairs), size=NUM_SPLITS, replace=False)
    return [list(pairs[i]) for i in picks]


def _val_contents() -> List[str]:
    """For each split, one content that is not a test content, held out for validation (70/10/20)."""
    rng = np.random.default_rng(SEED + 1)
    return [str(rng.choice([c for c in CONTENTS if c not in test])) for test in _content_splits()]


def demo_paths(root: Path) -> Dict[str, Path]:
    """Where the demo builder puts its folder, images, meta CSV and split pickle under ``root``."""
    return {"root": root, "image_dir": root / "images", "meta_info_file": root / "meta_info_demo.csv",
            "split_file": root / "demo_split.pkl"}


def is_complete(root: Path) -> bool:
    """A finished build of this version under ``root`` (its marker is written last)."""
    marker = root / MARKER
    try:
        info = json.loads(marker.read_text())
    except (OSError, ValueError):
        return False
    return info.get("version") == BUILD_VERSION and all(p.exists() for p in demo_paths(root).values())


def build_demo_dataset(root: Union[str, Path], force: bool = False,
                       progress: Optional[Callable[[int, int], None]] = None) -> Dict[str, object]:
    """:func:`_build_demo_dataset`; a failed write (disk full, a read-only folder) is one OutputError
    naming the folder: the marker is written last, so the next run builds it again."""
    try:
        return _build_demo_dataset(root, force, progress)
    except OSError as err:
        raise OutputError(f"Cannot build the demo dataset in '{root}': {err.strerror or err}"
                          f"{f' ({err.filename})' if err.filename else ''}; free space or choose a "
                          "writable folder, then run again") from err


def _build_demo_dataset(root: Union[str, Path], force: bool = False,
                        progress: Optional[Callable[[int, int], None]] = None) -> Dict[str, object]:
    """Build the demo dataset under ``root`` unless a complete build is already there.

    The marker file ``root/.complete`` is written last, so an interrupted build is redone.

    Args:
        root: output folder.
        force: rebuild even if complete.
        progress: optional ``fn(done_contents, total_contents)`` callback.

    Returns:
        ``{'root', 'image_dir', 'meta_info_file', 'split_file'}`` (Paths), ``'num_images'`` (130),
        ``'num_splits'`` (10), ``'split_column_prefix'`` and ``'built'`` (False when already complete).
    """
    root = Path(root)
    paths = demo_paths(root)
    result: Dict[str, object] = {**paths, "num_images": len(CONTENTS) * (1 + len(DISTORTIONS) * len(LEVELS)),
                                 "num_splits": NUM_SPLITS, "split_column_prefix": split_column_prefix("802"),
                                 "val_split_column_prefix": split_column_prefix("712")}
    if not force and is_complete(root):
        logger.info("Demo dataset already complete at %s", root)
        return {**result, "built": False}
    (root / MARKER).unlink(missing_ok=True)
    if paths["image_dir"].exists():
        shutil.rmtree(paths["image_dir"])
    paths["image_dir"].mkdir(parents=True)
    logger.info("Building demo dataset (%d images) in %s", result["num_images"], root)

    rng = np.random.default_rng(SEED)
    records = []
    for i, (content, (func_name, region)) in enumerate(CONTENTS.items()):
        ref = _load_content(func_name, region)
        items = [("pristine", 0, ref, PRISTINE_MOS)]
        for kind, (params, offset) in DISTORTIONS.items():
            for level, param in zip(LEVELS, params):
                items.append((kind, level, distort_image(ref, kind, param, rng), LEVEL_MOS[level] + offset))
        for kind, level, img, mos in items:
            name = f"{content}_{kind}{level if level else ''}.png"
            img.save(paths["image_dir"] / name, compress_level=1)  # lossless; fast
            records.append({"image_name": f"images/{name}", "mos": mos, "content": content,
                            "distortion": kind, "level": level})
        logger.info("demo dataset: content %d/%d (%s) done", i + 1, len(CONTENTS), content)
        if progress is not None:
            progress(i + 1, len(CONTENTS))

    table = pd.DataFrame.from_records(records)
    splits = {}
    for index, (test_contents, val_content) in enumerate(zip(_content_splits(), _val_contents()), start=1):
        is_test = table["content"].isin(test_contents)
        table[f"{result['split_column_prefix']}{index:02d}"] = np.where(is_test, "test", "train")
        part = np.where(is_test, "test", np.where(table["content"] == val_content, "val", "train"))
        table[f"{result['val_split_column_prefix']}{index:02d}"] = part
        splits[index] = {"train": table.index[~is_test].tolist(), "val": [],
                         "test": table.index[is_test].tolist()}
    table.to_csv(paths["meta_info_file"], index=False)
    with open(paths["split_file"], "wb") as f:
        pickle.dump(splits, f)
    (root / MARKER).write_text(json.dumps({"version": BUILD_VERSION, "num_images": len(table)}))
    logger.info("Demo dataset complete: %d images, %d splits", len(table), NUM_SPLITS)
    return {**result, "built": True}


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry: ``python -m pyiqa.data.demo_dataset --root datasets/demo [--force]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", default="datasets/demo", help="output folder (default: %(default)s)")
    parser.add_argument("--force", action="store_true", help="rebuild even if already complete")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    info = build_demo_dataset(args.root, force=args.force)
    logger.info("meta_info_file: %s  split_file: %s", info["meta_info_file"], info["split_file"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
