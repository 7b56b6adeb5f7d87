"""A feature-cache build as its own process (the kill-and-resume test runs it in a subprocess)."""
from __future__ import annotations

import logging
import sys

import torch

from pyiqa.archs.uniqa_arch import UniQA
from pyiqa.data.builder import build_dataset
from pyiqa.data.feature_cache import FeatureCache


def build(root: str, meta: str, split: str, backbone: str, cache_dir: str, views: int = 2) -> None:
    """Build the demo training set's view cache (tiny backbone) under ``cache_dir``, logging to stdout."""
    logging.basicConfig(stream=sys.stdout, level=logging.INFO)
    opt = {"type": "GeneralNRDataset", "name": "demo", "dataroot_target": root, "meta_info_file": meta,
           "split_file": split, "split_index": 1, "mos_range": [0, 100], "mos_normalize": True,
           "augment": {"hflip": True, "random_crop": 224}}
    ds = build_dataset(opt, "train", where="datasets.train")
    torch.manual_seed(0)
    net = UniQA(backbone=backbone, embedding_dim=32)
    FeatureCache(cache_dir, net, torch.device("cpu")).prepare(ds, "views", views, seed=1, progress=False)
