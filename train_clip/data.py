"""Image-caption pairs for contrastive pre-training: the release's JSON lists, CSV/TSV files and the
embedded demo, mixed into one dataset whose every random choice is a function of (seed, epoch, index).

That last property makes a resumed or re-sharded run see exactly the same crops and captions: a sample
looks the same whichever worker or rank loads it, and whether or not the run was interrupted.
"""
from __future__ import annotations

import json
import logging
import random
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import torch
from open_clip.tokenizer import SimpleTokenizer
from open_clip.transform import AugmentationCfg, image_transform
from torch.utils.data import Dataset

from pyiqa.archs.uniqa_arch import OPENAI_CLIP_MEAN, OPENAI_CLIP_STD
from pyiqa.data import decode_image
from pyiqa.data.failures import FailureTracker, load_or_replace, sample_seed
from pyiqa.data.prepare.user_files import check_names, decode_text, read_bytes, read_csv
from pyiqa.utils.errors import ConfigError, DataError
from pyiqa.utils.registry import closest

logger = logging.getLogger(__name__)

Sample = Tuple[str, Tuple[str, ...]]  # (image path, captions to sample from)
ABSOLUTE_OPTION = "the source option 'allow_absolute: true'"
SOURCE_KEYS = {
    "json": {"type", "path", "data_root", "repeat", "allow_absolute"},
    "csv": {"type", "path", "data_root", "repeat", "img_key", "caption_key", "sep", "allow_absolute"},
    "demo": {"type", "root", "split_index", "phase", "repeat"},
}


# ------------------------------------------------------------------------------------------ sources
def read_json_source(path: str | Path, data_root: Optional[str] = None,
                     allow_absolute: bool = False) -> List[Sample]:
    """The release's format: ``[{"image_path": str, "prompt": str | [str, ...]}, ...]``.

    Image paths are relative to ``data_root``, or the JSON file's folder when unset, and must stay
    inside it (``allow_absolute: true`` on the source accepts absolute paths; ``..`` never climbs out).
    Raises DataError naming the file and the entry index of any malformed entry.
    """
    path = Path(path)
    data = read_bytes(path, "Caption file")
    try:
        entries = json.loads(decode_text(data, path, "Caption file"))
    except ValueError as err:
        raise DataError(f"Caption file '{path}' is not valid JSON: {err}") from err
    if not isinstance(entries, list):
        raise DataError(f"Caption file '{path}' must hold a JSON list of "
                        f"{{\"image_path\", \"prompt\"}} entries, got {type(entries).__name__}")
    root = Path(data_root) if data_root is not None else path.parent
    samples = []
    for i, entry in enumerate(entries):
        where = f"'{path}' entry {i}"
        if not isinstance(entry, dict):
            raise DataError(f"{where} must be an object with 'image_path' and 'prompt', got {entry!r}")
        for key in ("image_path", "prompt"):
            if key not in entry:
                raise DataError(f"{where} has no '{key}' (keys: {sorted(entry)}); every entry needs "
                                f"'image_path' and 'prompt'")
        image = entry["image_path"]
        if not isinstance(image, str) or not image.strip():
            raise DataError(f"{where}: 'image_path' must be a non-empty string, got {image!r}")
        check_names([image], [f"entry {i}"], f"'{path}'", allow_absolute, ABSOLUTE_OPTION)
        samples.append((str(root / image), _captions(entry["prompt"], where)))
    return samples


def _captions(prompt: Any, where: str) -> Tuple[str, ...]:
    prompts = [prompt] if isinstance(prompt, str) else prompt
    if not isinstance(prompts, list) or not prompts:
        raise DataError(f"{where}: 'prompt' must be a string or a non-empty list of strings, got "
                        f"{prompt!r}")
    for text in prompts:
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"{where}: every prompt must be a non-empty string, got {text!r}")
    return tuple(prompts)


def read_csv_source(path: str | Path, img_key: str = "filepath", caption_key: str = "caption",
                    sep: Optional[str] = None, data_root: Optional[str] = None,
                    allow_absolute: bool = False) -> List[Sample]:
    """open_clip's CSV/TSV layout: one (image, caption) pair per row. ``sep`` defaults from the suffix.
    Image names stay inside ``data_root`` as in :func:`read_json_source`."""
    path = Path(path)
    sep = sep if sep is not None else ("\t" if path.suffix.lower() == ".tsv" else ",")
    table = read_csv(path, f"Caption table (sep={sep!r})", sep=sep, dtype=str, keep_default_na=False)
    for key in (img_key, caption_key):
        if key not in table.columns:
            raise DataError(f"Caption table '{path}' has no column '{key}'.{closest(key, table.columns)} "
                            f"Columns: {list(table.columns)} (set img_key / caption_key / sep)")
    root = Path(data_root) if data_root is not None else path.parent
    samples = []
    for i, (image, caption) in enumerate(zip(table[img_key], table[caption_key])):
        where = f"'{path}' row {i}"
        if not image.strip():
            raise DataError(f"{where}: empty '{img_key}'")
        check_names([image], [f"row {i}"], f"'{path}'", allow_absolute, ABSOLUTE_OPTION)
        samples.append((str(root / image), _captions(caption, where)))
    return samples


def _allow_absolute(src: Dict[str, Any], here: str) -> bool:
    value = src.get("allow_absolute", False)
    if not isinstance(value, bool):
        raise ConfigError(f"'{here}.allow_absolute' must be true or false, got {value!r}")
    return value


def build_samples(sources: Sequence[Dict[str, Any]], where: str) -> List[Sample]:
    """Concatenate every source (each repeated ``repeat`` times, to balance e.g. IQA and IAA sets)."""
    samples: List[Sample] = []
    for k, src in enumerate(sources):
        here = f"{where}[{k}]"
        if not isinstance(src, dict) or src.get("type") not in SOURCE_KEYS:
            raise ConfigError(f"'{here}' must be a mapping with type one of {sorted(SOURCE_KEYS)}, "
                              f"got {src!r}")
        valid = SOURCE_KEYS[src["type"]]
        for key in src:
            if key not in valid:
                raise ConfigError(f"Unknown option '{here}.{key}'.{closest(key, valid)} "
                                  f"Valid keys: {sorted(valid)}")
        repeat = src.get("repeat", 1)
        if not isinstance(repeat, int) or repeat < 1:
            raise ConfigError(f"'{here}.repeat' must be an integer >= 1, got {repeat!r}")
        if src["type"] != "demo" and not src.get("path"):
            raise ConfigError(f"'{here}.path' is required for a {src['type']} source")
        if src["type"] == "json":
            found = read_json_source(src["path"], src.get("data_root"), _allow_absolute(src, here))
        elif src["type"] == "csv":
            found = read_csv_source(src["path"], src.get("img_key", "filepath"),
                                    src.get("caption_key", "caption"), src.get("sep"), src.get("data_root"),
                                    _allow_absolute(src, here))
        else:
            from .demo_captions import write_demo_captions  # builds the demo images on first use
            json_path = write_demo_captions(src.get("root", "./datasets/demo"), src.get("split_index", 1),
                                            src.get("phase", "train"))
            found = read_json_source(json_path)
        logger.info("%s (%s): %d image-caption entries%s", here, src.get("path") or src.get("root", "demo"),
                    len(found), f" x{repeat}" if repeat > 1 else "")
        samples.extend(found * repeat)
    return samples


def drop_missing(samples: List[Sample], tracker: FailureTracker) -> List[Sample]:
    """Remove entries whose image file does not exist (a stat, not a decode), recording them."""
    missing = [(p, "file does not exist") for p, _ in samples if not Path(p).is_file()]
    if not missing:
        return samples
    tracker.add(missing)
    tracker.check()
    gone = {p for p, _ in missing}
    logger.warning("Skipping %d training entries whose image file is missing (%d unique files), "
                   "e.g. %s", sum(1 for p, _ in samples if p in gone), len(gone), missing[0][0])
    return [s for s in samples if s[0] not in gone]


# ------------------------------------------------------------------------------------------ dataset
def clip_transform(image_size: int, is_train: bool, aug: Optional[Dict[str, Any]] = None) -> Callable:
    """open_clip's CLIP transform with the OpenAI mean/std that UniQA normalises with downstream."""
    try:
        cfg = AugmentationCfg(**(aug or {}))
    except TypeError as err:
        raise ConfigError(f"'data.transform' has an option open_clip's AugmentationCfg does not know: "
                          f"{err}") from err
    return image_transform(image_size, is_train=is_train, mean=OPENAI_CLIP_MEAN, std=OPENAI_CLIP_STD,
                           aug_cfg=cfg)


class CaptionDataset(Dataset):
    """(image, tokenised caption) pairs. Training draws one caption per image per epoch.

    Items: ``image`` (3, S, S) normalised, ``text`` (context_length,) token ids, ``failed`` a list of
    (path, reason) of unreadable images replaced by another entry, ``truncated`` whether the caption
    was cut to the context length.
    """

    def __init__(self, samples: List[Sample], transform: Callable, context_length: int = 77,
                 seed: int = 0, train: bool = True):
        if not samples:
            raise DataError("No image-caption pairs to train on (every source is empty or missing)")
        self.samples = samples
        self.transform = transform
        self.context_length = context_length
        self.tokenizer = SimpleTokenizer(context_length=context_length)
        self.seed = seed
        self.train = train
        self.epoch = 0

    def reseed(self, seed: int, epoch: int) -> None:
        """Draw this epoch's captions and crops from (seed, epoch, index); set before iterating the loader
        (the same hook as the IQA datasets')."""
        self.seed, self.epoch = int(seed), int(epoch)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Dict[str, Any]:
        (img, captions), failed = load_or_replace(
            index, len(self.samples), lambda i: (decode_image(self.samples[i][0]), self.samples[i][1]),
            name=lambda i: self.samples[i][0])
        seed = sample_seed(self.seed, self.epoch, index)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)  # the crop depends only on (seed, epoch, index)
            image = self.transform(img)
        caption = random.Random(seed).choice(captions) if self.train else captions[0]
        text = self.tokenizer([caption])[0]
        truncated = len(self.tokenizer.encode(caption)) + 2 > self.context_length  # + start/end tokens
        return {"image": image, "text": text, "caption": caption, "failed": failed,
                "truncated": truncated}


def collate(items: List[Dict[str, Any]]) -> Dict[str, Any]:
    return {"image": torch.stack([it["image"] for it in items]),
            "text": torch.stack([it["text"] for it in items]),
            "caption": [it["caption"] for it in items],
            "failed": [f for it in items for f in it["failed"]],
            "truncated": sum(int(it["truncated"]) for it in items)}
