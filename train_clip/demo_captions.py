"""Quality captions for the embedded demo images, written from their distortion type, level and MOS.

Mirrors the release's data construction (reference section 5) without an MLLM: the MOS is normalised
and cut into five equal-width levels (bad, poor, fair, good, perfect; top 20 % -> perfect), and each
image gets several captions that combine that level word with its distortion, e.g. "a heavily underexposed
photo of poor quality". Captions use the words of UniQA's quality prompts ("poor image"), so the
zero-shot prompt score of the pre-trained CLIP becomes meaningful.

Only the rows of one split's phase are written: pre-training on ``phase: train`` of split k never sees
that split's test images.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Dict, List, Tuple, Union

import pandas as pd

from pyiqa.data.demo_dataset import build_demo_dataset
from pyiqa.data.splits import split_column_name
from pyiqa.utils import dist
from pyiqa.utils.errors import ConfigError

logger = logging.getLogger(__name__)

DEMO_SPLIT_RATIO = "712"  # train/val/test by scene, as options/train/UniQA/demo.yml

LEVEL_WORDS = ("bad", "poor", "fair", "good", "perfect")  # the order of UniQA's score levels
MOS_RANGE = (0.0, 100.0)
SEVERITY = {1: "slightly", 2: "moderately", 3: "heavily"}
# distortion -> (adjective forms used in captions, noun phrase)
DISTORTION_WORDS: Dict[str, Tuple[Tuple[str, ...], str]] = {
    "gblur": (("blurred", "blurry", "out-of-focus"), "blur"),
    "gnoise": (("noisy", "grainy"), "noise"),
    "jpeg": (("JPEG-compressed", "blocky"), "compression artifacts"),
    "contrast": (("low-contrast", "washed-out"), "low contrast"),
    "darken": (("underexposed", "dark"), "underexposure"),
    "desaturate": (("desaturated", "colourless"), "colour loss"),
}


def level_word(mos: float) -> str:
    """One of LEVEL_WORDS from five equal-width bins of the normalised MOS."""
    lo, hi = MOS_RANGE
    norm = min(max((float(mos) - lo) / (hi - lo), 0.0), 1.0)
    return LEVEL_WORDS[min(int(norm * len(LEVEL_WORDS)), len(LEVEL_WORDS) - 1)]


def captions_for(distortion: str, level: int, mos: float) -> List[str]:
    """Captions of one demo image; the first is the canonical one (used for retrieval evaluation)."""
    q = level_word(mos)
    if distortion == "pristine" or level == 0:
        return [f"a sharp, clean photo of {q} quality", f"{q} image", f"a {q} quality photo",
                f"{q} image, no visible distortion", "a pristine photo"]
    if distortion not in DISTORTION_WORDS:
        raise ConfigError(f"No caption words for demo distortion '{distortion}'")
    adjectives, noun = DISTORTION_WORDS[distortion]
    sev = SEVERITY[int(level)]
    caps = [f"a {sev} {adjectives[0]} photo of {q} quality", f"{q} image", f"a {q} quality photo",
            f"{q} image with {sev} visible {noun}"]
    caps += [f"a {sev} {adj} image of {q} quality" for adj in adjectives[1:]]
    return caps


def write_demo_captions(root: Union[str, Path], split_index: int = 1, phase: str = "train") -> Path:
    """Build the demo images if needed and write ``<root>/clip_captions_split<k>_<phase>.json``.

    The rows are those of ``phase`` in the 70/10/20 split columns (``ratio712_seed123_split_NN``) that the
    adapter demo uses. Returns the path of the JSON list (the release's ``{"image_path", "prompt"}``
    format).
    """
    root = Path(root)
    if dist.get_rank() == 0:
        info = build_demo_dataset(root)
    dist.barrier()
    if dist.get_rank() != 0:
        info = build_demo_dataset(root)
    table = pd.read_csv(info["meta_info_file"])
    # the 70/10/20 form the adapter demo trains with: its validation and test scenes are never captioned
    # for training
    column = split_column_name(split_index, DEMO_SPLIT_RATIO)
    if phase not in ("train", "val", "test"):
        raise ConfigError(f"Demo split phase must be train, val or test, got '{phase}'")
    rows = table.index[table[column] == phase].tolist()
    entries = [{"image_path": table.at[r, "image_name"],
                "prompt": captions_for(table.at[r, "distortion"], int(table.at[r, "level"]),
                                       float(table.at[r, "mos"]))} for r in rows]
    path = root / f"clip_captions_split{int(split_index):02d}_{phase}.json"
    if dist.get_rank() == 0:
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(entries, indent=1), encoding="utf-8")
        tmp.replace(path)
        logger.info("Demo captions: %d %s images of split %d -> %s", len(entries), phase, split_index, path)
    dist.barrier()
    return path
