"""Build datasets from YAML sections and wrap them in DataLoaders with reproducible randomness."""
from __future__ import annotations

import functools
import logging
import random
import re
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, default_collate

from ..utils.errors import ConfigError, DataError
from ..utils.options import check_int
from ..utils.registry import DATASET_REGISTRY
from ..utils.threads import MAX_LOADER_WORKERS
from .resumable_sampler import ResumableSampler

logger = logging.getLogger(__name__)


# Keys of a ``datasets.<phase>`` section that configure its DataLoader, not the dataset class.
LOADER_KEYS = ("batch_size_per_gpu", "num_worker_per_gpu", "use_shuffle", "max_failed_fraction")


def split_options(opt: Dict[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """(dataset options, loader options) of a YAML ``datasets.<phase>`` section (pyiqa keeps both in
    one section; the dataset class only receives its own)."""
    return ({k: v for k, v in opt.items() if k not in LOADER_KEYS},
            {k: v for k, v in opt.items() if k in LOADER_KEYS})


def build_dataset(opt: Dict[str, Any], phase: str, where: str) -> Dataset:
    """Instantiate ``opt['type']`` from DATASET_REGISTRY for ``phase`` ('train', 'val' or 'test').

    Args:
        opt: the YAML ``datasets.<phase>`` mapping (not modified); its loader keys are left out.
        where: its config path, used in error messages (e.g. ``datasets.train``).
    """
    dataset_opt, _ = split_options(opt) if isinstance(opt, dict) else (opt, {})
    try:
        return DATASET_REGISTRY.build(dataset_opt, where, phase=phase)
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
    if "img" not in batch[0]:  # cached embeddings ('feat'): all of one shape
        return default_collate(batch)
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


def build_dataloader(dataset: Dataset, opt: Dict[str, Any], phase: str, seed: int = 0, rank: int = 0,
                     world_size: int = 1, where: Optional[str] = None,
                     device: Optional[torch.device] = None) -> DataLoader:
    """The DataLoader of ``dataset``, from the loader keys of its YAML section ``opt``.

    Train: a :class:`ResumableSampler` (order a pure function of (seed, epoch), this rank's share,
    ``set_epoch(epoch, skip)`` to resume mid-epoch), ``batch_size_per_gpu`` images per process,
    drop_last, mixed image sizes refused with advice. Val/test: every image once, in order, unsharded
    (a DistributedSampler would pad with duplicates and bias correlations); images of mixed sizes stay
    a list. Workers get distinct numpy/random seeds; the loader's generator (``loader.generator``) is
    seeded from ``seed + rank`` and is what a trainer reseeds per epoch.

    Raises:
        ConfigError: a bad batch size or worker count, or a batch larger than this rank's images.
    """
    where = where or f"datasets.{phase}"
    batch_size = check_int(opt.get("batch_size_per_gpu", 1), f"{where}.batch_size_per_gpu", 1,
                           integral_floats=False)
    workers = check_int(opt.get("num_worker_per_gpu", 0), f"{where}.num_worker_per_gpu", 0,
                        integral_floats=False, maximum=MAX_LOADER_WORKERS)
    shuffle = opt.get("use_shuffle", True)
    if not isinstance(shuffle, bool):
        raise ConfigError(f"'{where}.use_shuffle' must be true or false, got {shuffle!r}")
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
