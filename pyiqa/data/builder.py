"""Build datasets from YAML sections and wrap them in DataLoaders with reproducible randomness."""
from __future__ import annotations

import functools
import logging
import random
import re
from typing import Any, Dict, List, Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, default_collate

from ..utils.errors import ConfigError, DataError
from ..utils.registry import DATASET_REGISTRY

logger = logging.getLogger(__name__)


def build_dataset(opt: Dict[str, Any], phase: str, where: str) -> Dataset:
    """Instantiate ``opt['type']`` from DATASET_REGISTRY for ``phase`` ('train', 'val' or 'test').

    Args:
        opt: the YAML ``datasets.<phase>`` mapping (not modified).
        where: its config path, used in error messages (e.g. ``datasets.train``).
    """
    try:
        return DATASET_REGISTRY.build(opt, where, phase=phase)
    except ConfigError as exc:
        # The constructor only knows its phase, so it says 'datasets.val'; name the real section
        # (e.g. 'datasets.val_koniq') instead.
        fixed = re.sub(rf"'datasets\.{re.escape(phase)}(?=[.'])", f"'{where}", str(exc))
        if fixed == str(exc):
            raise
        raise ConfigError(fixed) from exc


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
    out = {key: default_collate([item[key] for item in batch]) for key in batch[0] if key != "img"}
    out["img"] = torch.stack(imgs) if same else imgs
    return out


def seed_worker(worker_id: int) -> None:
    """Seed numpy and ``random`` in a DataLoader worker from torch's per-worker seed.

    torch already seeds each worker with ``base_seed + worker_id``; numpy/random would otherwise be
    forked copies that repeat the same numbers in every worker.
    """
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def build_dataloader(dataset: Dataset, opt: Dict[str, Any], phase: str, num_gpu: int, dist: bool = False,
                     rank: int = 0, world_size: int = 1, seed: Optional[int] = None) -> DataLoader:
    """DataLoader for ``dataset`` using the loader keys of its YAML section ``opt``.

    Train: shuffle per ``use_shuffle`` (a DistributedSampler when ``dist``; call its ``set_epoch``
    each epoch), ``batch_size_per_gpu`` per process (times ``num_gpu`` without ``dist``, since
    DataParallel splits one batch over the GPUs), ``num_worker_per_gpu`` workers likewise,
    drop_last only when the dataset is larger than a batch. Val/test: no shuffle and no sharding
    (a DistributedSampler would pad with duplicate images and bias correlations); mixed image
    sizes are kept as a list by ``collate_images``.
    """
    where = f"datasets.{phase}"
    batch_size = _positive_int(opt.get("batch_size_per_gpu", 1), f"{where}.batch_size_per_gpu")
    workers = opt.get("num_worker_per_gpu", 0)
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
        raise ConfigError(f"'{where}.num_worker_per_gpu' must be an int >= 0, got {workers!r}")
    generator = torch.Generator()
    if seed is not None:
        # Fixes the shuffle order and the workers' base seed, hence every random augmentation.
        generator.manual_seed(seed + rank)
    else:
        generator.seed()
    common = dict(num_workers=workers, pin_memory=num_gpu > 0 and torch.cuda.is_available(),
                  worker_init_fn=seed_worker, generator=generator, persistent_workers=workers > 0)
    if phase == "train":
        if not dist:
            multiplier = max(1, num_gpu)
            batch_size, common["num_workers"] = batch_size * multiplier, workers * multiplier
            common["persistent_workers"] = common["num_workers"] > 0
        shuffle = bool(opt.get("use_shuffle", True))
        sampler = None
        if dist:
            sampler = DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=shuffle,
                                         seed=seed if seed is not None else 0)
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=shuffle if sampler is None else False,
                            sampler=sampler, drop_last=len(dataset) > batch_size,
                            collate_fn=functools.partial(collate_images, allow_mixed_sizes=False), **common)
    elif phase in ("val", "test"):
        loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, drop_last=False,
                            collate_fn=collate_images, **common)
    else:
        raise ConfigError(f"build_dataloader: phase must be 'train', 'val' or 'test', got {phase!r}")
    logger.info("%s loader: %d images, batch %d, %d workers, %d batches/epoch", phase, len(dataset),
                loader.batch_size, loader.num_workers, len(loader))
    return loader


def _positive_int(value: Any, where: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"'{where}' must be an int >= 1, got {value!r}")
    return value
