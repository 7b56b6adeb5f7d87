"""Datasets that serve cached tower embeddings in place of images (``train.feature_cache: true``).

They keep the wrapped dataset's rows, labels and item order, so the trainer's sampler, batch loop,
resume and metrics work unchanged; only ``img`` becomes ``feat``, as in the standard loop's live feed
(:mod:`pyiqa.models.embedding_feed`).
"""
from __future__ import annotations

from typing import Any, Dict, Iterator

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from .feature_cache import epoch_views
from .feature_shards import FeatureTable
from .resumable_sampler import ResumableSampler


class CachedTrainLoader:
    """Training batches of cached views, gathered on the device: no per-item Python work per step.

    The stored counterpart of the training image loader it is built from: the same dataset rows, the
    same :class:`ResumableSampler` (``set_epoch(epoch, skip)``: exact resume and DDP sharding unchanged),
    the same batch size and drop_last. Item ``i`` of epoch ``e`` uses view ``epoch_views(seed, e, n, K)[i]``
    of its image, ``seed`` and ``e`` being the sampler's. Every training image's K views are held on
    the device (float16; 16 KB per image at K=16, D=512).
    """

    def __init__(self, images: DataLoader, table: FeatureTable, device: torch.device):
        ds = images.dataset
        unique = sorted(set(ds.rows))
        position = {row: k for k, row in enumerate(unique)}
        self.feats = torch.from_numpy(np.stack([np.asarray(table.get(r)) for r in unique])).to(device)
        self.item_pos = torch.tensor([position[r] for r in ds.rows], device=device)
        self.labels = torch.tensor([[float(ds.labels[r])] for r in ds.rows], dtype=torch.float32, device=device)
        self.views, self.batch_size, self.device = table.spec.per_image, int(images.batch_size), device
        self.sampler: ResumableSampler = images.sampler

    def __len__(self) -> int:
        return len(self.sampler) // self.batch_size

    def __iter__(self) -> Iterator[Dict[str, torch.Tensor]]:
        order = torch.tensor(list(self.sampler), dtype=torch.long, device=self.device)
        views = epoch_views(self.sampler.seed, self.sampler.epoch, len(self.item_pos), self.views)
        views = torch.from_numpy(views).to(self.device)
        for start in range(0, len(order) - self.batch_size + 1, self.batch_size):
            items = order[start:start + self.batch_size]
            yield {"feat": self.feats[self.item_pos[items], views[items]].float(), "mos_label": self.labels[items]}


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


def cached_crops_loader(images: DataLoader, table: FeatureTable) -> DataLoader:
    """The stored counterpart of an evaluation image loader: the same items, order and batch size, each
    batch's ``feat`` (B, T, D) float32. Read in the main process (memory-mapped: no decoding to share)."""
    return DataLoader(CachedCropsDataset(images.dataset, table), batch_size=images.batch_size, shuffle=False,
                      drop_last=False, collate_fn=default_collate, pin_memory=images.pin_memory)
