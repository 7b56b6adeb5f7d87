"""What the score head eats: batches whose ``feat`` holds the frozen tower's embeddings.

UniQA splits into ``forward_features`` (frozen tower: crops -> embeddings) and ``forward_head``
(adapter and levels: embeddings -> scores). The training step and :func:`~pyiqa.models.predict.predict`
only ever call the head on ``batch["feat"]``; an :class:`EmbeddingFeed` is where ``feat`` comes from:

* ``EmbeddingFeed.live(loader, net, device, train)``: the standard loop. Each image batch is embedded
  as it arrives, under ``torch.no_grad`` (nothing before the head trains): training crops (B, 3, S, S)
  -> ``feat`` (B, D); evaluation images -> the embeddings of their test crops, ``feat`` (sum T_i, D)
  with ``counts`` T_i.
* ``EmbeddingFeed.stored(loader)``: a feature cache's loader (:mod:`pyiqa.data.cached_dataset`), whose
  batches carry stored embeddings already: ``feat`` (B, D) for training, (B, T, D) for evaluation.

A feed behaves like the loader it wraps (``len``, ``sampler``, ``batch_size``, ``dataset``), and passes
``num_workers`` / ``worker_init_fn`` through, so :mod:`pyiqa.utils.worker_guard` guards the DataLoader
inside it.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, Iterator, Optional

import torch
import torch.nn as nn

Batch = Dict[str, Any]


class EmbeddingFeed:
    """A loader of batches with ``feat``; build it with :meth:`live` or :meth:`stored`.

    Args:
        loader: the wrapped loader.
        embed: batch -> batch with ``feat`` (live), or None when ``loader``'s batches carry it (stored).
    """

    def __init__(self, loader: Any, embed: Optional[Callable[[Batch], Batch]] = None):
        self.loader, self.embed = loader, embed

    @classmethod
    def live(cls, loader: Any, net: nn.Module, device: torch.device, train: bool = False) -> "EmbeddingFeed":
        """The image ``loader``'s batches, embedded by ``net``'s frozen tower on ``device``.

        Args:
            train: batches hold training crops ('img' (B, 3, S, S)); else evaluation images ('img' a
                (B, 3, H, W) tensor or a list of (3, H, W)), cut into ``net``'s test crops.
        """
        return cls(loader, _TrainCrops(net, device) if train else _TestCrops(net, device))

    @classmethod
    def stored(cls, loader: Any) -> "EmbeddingFeed":
        """A loader whose batches carry stored embeddings (a feature cache's)."""
        return cls(loader)

    def __iter__(self) -> Iterator[Batch]:
        for batch in self.loader:
            yield batch if self.embed is None else self.embed(batch)

    def __len__(self) -> int:
        return len(self.loader)

    @property
    def sampler(self) -> Any:
        return self.loader.sampler

    @property
    def batch_size(self) -> Optional[int]:
        return self.loader.batch_size

    @property
    def dataset(self) -> Any:
        return self.loader.dataset

    @property
    def num_workers(self) -> int:
        return getattr(self.loader, "num_workers", 0)

    @property
    def worker_init_fn(self) -> Optional[Callable[[int], None]]:
        return getattr(self.loader, "worker_init_fn", None)

    @worker_init_fn.setter
    def worker_init_fn(self, fn: Optional[Callable[[int], None]]) -> None:
        self.loader.worker_init_fn = fn  # worker_guard installs its guard in the real DataLoader


def as_feed(loader: Any, net: nn.Module, device: torch.device) -> EmbeddingFeed:
    """``loader`` if it is a feed; an evaluation image loader (pyiqa/test.py, zero-shot runs) fed live."""
    return loader if isinstance(loader, EmbeddingFeed) else EmbeddingFeed.live(loader, net, device)


def _without_images(batch: Batch, **feat: Any) -> Batch:
    """The batch with its images replaced by their embeddings (labels, paths, failures kept)."""
    return {**{k: v for k, v in batch.items() if k != "img"}, **feat}


class _TrainCrops:
    """Training crops (B, 3, S, S) -> ``feat`` (B, D)."""

    def __init__(self, net: nn.Module, device: torch.device):
        self.net, self.device = net, device

    def __call__(self, batch: Batch) -> Batch:
        with torch.no_grad():  # the tower is frozen: nothing before the head needs a graph
            feat = self.net.forward_features(batch["img"].to(self.device, non_blocking=True))
        return _without_images(batch, feat=feat)


class _TestCrops:
    """Evaluation images -> ``feat`` (sum T_i, D), the embeddings of their test crops, and ``counts``."""

    def __init__(self, net: nn.Module, device: torch.device):
        self.net, self.device = net, device

    def __call__(self, batch: Batch) -> Batch:
        img = batch["img"]
        images = [t.to(self.device) for t in img] if isinstance(img, list) else img.to(self.device)
        with torch.no_grad():
            feat, counts = self.net.test_crop_features(images)
        return _without_images(batch, feat=feat, counts=counts)
