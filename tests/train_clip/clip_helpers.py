"""Data and YAMLs for the train_clip tests: 16 striped colour images whose captions name colour and
stripe direction (learnable by a tiny CLIP in a few dozen steps), in JSON and CSV form, plus a MOS
table so the zero-shot IQA evaluation has a labelled set."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Dict, List

import numpy as np
from PIL import Image

from helpers import apply_changes

COLOURS = {"red": (220, 30, 30), "green": (30, 200, 30), "blue": (30, 30, 220), "yellow": (230, 230, 30),
           "purple": (150, 30, 160), "cyan": (30, 210, 210), "white": (240, 240, 240), "black": (15, 15, 15)}


def write_pairs(root: Path) -> Dict[str, Any]:
    (root / "img").mkdir(parents=True, exist_ok=True)
    entries, rows = [], []
    for k, (name, rgb) in enumerate(COLOURS.items()):
        for direction in ("horizontal", "vertical"):
            a = np.empty((72, 88, 3), np.uint8)
            a[:] = rgb
            if direction == "horizontal":
                a[::8], a[1::8] = 128, 128
            else:
                a[:, ::8], a[:, 1::8] = 128, 128
            rel = f"img/{name}_{direction}.png"
            Image.fromarray(a).save(root / rel)
            entries.append({"image_path": rel, "prompt": [f"a {name} image with {direction} stripes",
                                                          f"{direction} stripes on {name}"]})
            rows.append((rel, 10.0 * k + (5 if direction == "vertical" else 0)))
    (root / "pairs.json").write_text(json.dumps(entries))
    (root / "pairs.csv").write_text("filepath,caption\n" + "".join(
        f"{e['image_path']},{e['prompt'][0]}\n" for e in entries))
    (root / "mos.csv").write_text("image_name,mos\n" + "".join(f"{n},{m}\n" for n, m in rows))
    (root / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    (root / "broken.json").write_text(json.dumps([{"image_path": "broken.png", "prompt": "a broken file"}]))
    return {"root": root, "json": root / "pairs.json", "csv": root / "pairs.csv", "mos": root / "mos.csv",
            "broken": root / "broken.png", "broken_json": root / "broken.json", "entries": entries}


def clip_options(name: str, pairs: Dict[str, Any], **changes: Any) -> Dict[str, Any]:
    """A complete small train_clip YAML over ``pairs``; ``a__b=value`` sets opt['a']['b']."""
    root = pairs["root"]
    opt: Dict[str, Any] = {
        "name": name, "num_gpu": 0, "manual_seed": 1, "precision": "fp32",
        "model": {"config": "tiny-64px"},
        "data": {"train": [{"type": "json", "path": str(pairs["json"])}], "num_workers": 0},
        "train": {"batch_size": 8, "total_steps": 24, "lr": 1e-3, "warmup_steps": 3},
        "eval": {"eval_freq": 12, "test_crop": "center",
                 "iqa": {"stripes": {"name": "stripes", "type": "GeneralNRDataset",
                                     "dataroot_target": str(root), "meta_info_file": str(pairs["mos"]),
                                     "mos_range": [0, 100], "mos_normalize": True}},
                 "retrieval": {"sources": [{"type": "csv", "path": str(pairs["csv"])}]}},
        "logger": {"print_freq": 1, "save_latest_freq": 8, "keep_checkpoints": 5},
        "dist_params": {"backend": "gloo"},
    }
    return apply_changes(opt, changes)


LOSS_RE = re.compile(r"step +(\d+)/\d+\] loss ([\d.]+)")


def losses(log_text: str) -> Dict[int, float]:
    """{step: loss} from a run's console output."""
    return {int(s): float(v) for s, v in LOSS_RE.findall(log_text)}


def first_last(values: List[float], n: int = 4) -> tuple:
    return sum(values[:n]) / n, sum(values[-n:]) / n
