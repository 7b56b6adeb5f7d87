"""Datasets that serve cached tower embeddings in place of images (``train.feature_cache: true``).

They keep the wrapped dataset's rows, labels and item order, so the trainer's sampler, batch loop,
resume and metrics work unchanged; only ``img`` becomes ``feat``.
"""
from __future__ import annotations

from typing import Any, Dict

import numpy as np
import torch
from torch.utils.data import Dataset

from .feature_cache import FeatureTable, view_of


class CachedViewsDataset(Dataset):
    """Training items: item ``i`` of epoch ``e`` is one of its image's K cached views, chosen from
    (seed, e, i) (:func:`view_of`), with the image's label. ``feat``: float32 (D,)."""

    def __init__(self, ds: Any, table: FeatureTable):
        self.ds, self.table = ds, table
        self.views = table.spec.per_image
        self.seed, self.epoch = 0, 0

    def reseed(self, seed: int, epoch: int) -> None:
        self.seed, self.epoch = int(seed), int(epoch)

    def __len__(self) -> int:
        return len(self.ds.rows)

    def __getitem__(self, index: int) -> Dict[str, Any]:
        row = self.ds.rows[index]
        view = view_of(self.seed, self.epoch, index, self.views)
        return {"feat": torch.from_numpy(np.asarray(self.table.get(row)[view], dtype=np.float32)),
                "mos_label": torch.tensor([self.ds.labels[row]], dtype=torch.float32),
                "img_path": str(self.ds.image_path(row))}


class CachedCropsDataset(Dataset):
    """Evaluation items: all T cached test crops of an image. ``feat``: float32 (T, D)."""

    def __init__(self, ds: Any, table: FeatureTable):
        self.ds, self.table = ds, table

    def __len__(self) -> int:
        return len(self.ds.rows)

    def __getitem__(self, index: int) -> Dict[str, Any]:
        row = self.ds.rows[index]
        return {"feat": torch.from_numpy(np.asarray(self.table.get(row), dtype=np.float32)),
                "mos_label": torch.tensor([self.ds.labels[row]], dtype=torch.float32),
                "img_path": str(self.ds.image_path(row))}
