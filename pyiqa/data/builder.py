"""Build datasets from YAML sections and wrap them in DataLoaders with reproducible randomness."""
from __future__ import annotations

import functools
import logging
import random
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from ..utils.errors import ConfigError, DataError
from ..utils.registry import DATASET_REGISTRY
from .loader_options import LoaderOptions, split_options
from .resumable_sampler import ResumableSampler

logger = logging.getLogger(__name__)


def build_dataset(opt: Dict[str, Any], phase: str, where: str) -> Dataset:
    """Instantiate ``opt['type']`` from DATASET_REGISTRY for ``phase`` ('train', 'val' or 'test').

    Args:
        opt: the YAML ``datasets.<phase>`` mapping (not modified); its loader keys are left out.
        where: its config path (e.g. ``datasets.val_koniq``); the registry hands it to the dataset, whose
            error messages name it.
    """
    dataset_opt, _ = split_options(opt) if isinstance(opt, dict) else (opt, {})
    given = dataset_opt.get("phase", phase) if isinstance(dataset_opt, dict) else phase
    if given != phase:  # pyiqa writes the section's phase over it; silently reading other rows would mislead
        raise ConfigError(f"'{where}.phase: {given}': a section's phase comes from its name ({where} is a "
                          f"{phase} section); to read the split's {given!r} rows write override_phase: {given}, "
                          "or drop the key")
    return DATASET_REGISTRY.build(dataset_opt, where, phase=phase)


def collate_images(batch: List[Dict[str, Any]], allow_mixed_sizes: bool = True) -> Dict[str, Any]:
    """Default collation, except that 'img' tensors of different shapes stay a list.

    Validation often runs on full-size images of mixed sizes (batch size 1 is the usual choice, but a
    list keeps larger batches possible). Training passes ``allow_mixed_sizes=False`` to get a clear
    error instead of ``torch.stack``'s.
    """
    if not batch:
        raise ValueError("collate_images got an empty batch")
    imgs = [item["img"] for item in batch]
    same = all(img.shape == imgs[0].shape for img in imgs)
    if not same and not allow_mixed_sizes:
        shapes = sorted({tuple(img.shape) for img in imgs})
        raise DataError(f"Training batch has images of different sizes {shapes}; add "
                        f"'random_crop' or 'resize' to the train dataset's 'augment' option")
    lists = ("img", "failed")  # 'failed': the (path, reason) pairs of replaced images, concatenated
    out = {key: default_collate([item[key] for item in batch]) for key in batch[0] if key not in lists}
    out["img"] = torch.stack(imgs) if same else imgs
    if "failed" in batch[0]:
        out["failed"] = [f for item in batch for f in item["failed"]]
    return out


def seed_worker(worker_id: int) -> None:
    """Seed numpy and ``random`` in a DataLoader worker from torch's per-worker seed.

    torch already seeds each worker with ``base_seed + worker_id``; numpy/random would otherwise be
    forked copies that repeat the same numbers in every worker.
    """
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def build_dataloader(dataset: Dataset, options: LoaderOptions, phase: str, seed: int = 0, rank: int = 0,
                     world_size: int = 1, where: Optional[str] = None,
                     device: Optional[torch.device] = None) -> DataLoader:
    """The DataLoader of ``dataset``, from the loader keys of its YAML section (:func:`loader_options`).

    Train: a :class:`ResumableSampler` (order a pure function of (seed, epoch), this rank's share,
    ``set_epoch(epoch, skip)`` to resume mid-epoch), ``batch_size_per_gpu`` images per process,
    drop_last, mixed image sizes refused with advice. Val/test: every image once, in order, unsharded
    (a DistributedSampler would pad with duplicates and bias correlations); images of mixed sizes stay
    a list. Workers get distinct numpy/random seeds; the loader's generator (``loader.generator``) is
    seeded from ``seed + rank`` and is what a trainer reseeds per epoch.

    Raises:
        ConfigError: a batch larger than this rank's images.
    """
    where = where or f"datasets.{phase}"
    batch_size, workers, shuffle = options.batch_size_per_gpu, options.num_worker_per_gpu, options.use_shuffle
    pin = (device.type == "cuda") if device is not None else torch.cuda.is_available()
    generator = torch.Generator().manual_seed(seed + rank)
    common = dict(batch_size=batch_size, num_workers=workers, pin_memory=pin, worker_init_fn=seed_worker,
                  generator=generator, persistent_workers=False)
    if phase == "train":
        sampler = ResumableSampler(len(dataset), shuffle=shuffle, seed=seed, rank=rank, world_size=world_size)
        if batch_size > sampler.per_rank:
            raise ConfigError(f"'{where}.batch_size_per_gpu' = {batch_size} is larger than the "
                              f"{sampler.per_rank} training images per process; lower the batch size")
        loader = DataLoader(dataset, sampler=sampler, drop_last=True,
                            collate_fn=functools.partial(collate_images, allow_mixed_sizes=False), **common)
    elif phase in ("val", "test"):
        loader = DataLoader(dataset, shuffle=False, drop_last=False, collate_fn=collate_images, **common)
    else:
        raise ConfigError(f"build_dataloader: phase must be 'train', 'val' or 'test', got {phase!r}")
    logger.debug("%s loader: %d images, batch %d, %d workers, %d batches per epoch", where, len(dataset),
                 batch_size, workers, len(loader))
    return loader
