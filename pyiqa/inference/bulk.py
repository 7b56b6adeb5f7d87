"""Score a collection into a folder: by one process, or by every process of a ``torchrun`` job.

Each process takes the units ``i`` with ``i % world_size == rank`` (a fixed, disjoint share), skips
those whose part is finished (``--resume``), scores the rest one part at a time and writes each part
atomically; when all are done, rank 0 merges them. Only ``torch.distributed`` is used between the
processes (gloo on CPU, NCCL on GPUs), for barriers; a process that dies ends the job (torchrun stops
the others) and the same command with ``--resume`` continues it, whatever the number of processes.
"""
from __future__ import annotations

import dataclasses
import datetime
import logging
import os
from typing import Any, Optional, Sequence, Tuple

import torch

from .batch import score_rows
from .collection import Collection
from .score_parts import Manifest, ScoreFolder

logger = logging.getLogger(__name__)

#: Barriers wait for the slowest process's share; a million images on a slow machine take days.
BARRIER_TIMEOUT = datetime.timedelta(days=7)


def launch_env() -> Tuple[int, int, int]:
    """(rank, world size, local rank) set by torchrun; (0, 1, 0) in a plain process."""
    def number(name: str, default: int) -> int:
        try:
            return int(os.environ.get(name, default))
        except ValueError:
            return default
    return number("RANK", 0), number("WORLD_SIZE", 1), number("LOCAL_RANK", 0)


def local_world_size() -> int:
    return int(os.environ.get("LOCAL_WORLD_SIZE", "1") or 1)


def process_device(device: torch.device) -> torch.device:
    """This process's device under torchrun: GPU ``local_rank`` (shared round-robin when a machine runs
    more processes than it has GPUs); a CPU stays the CPU."""
    if device.type != "cuda" or launch_env()[1] == 1:
        return device
    return torch.device("cuda", launch_env()[2] % max(1, torch.cuda.device_count()))


def join_group(device: torch.device) -> None:
    """Join torchrun's process group when there is more than one process: NCCL when every local process
    has a GPU of its own, else gloo (only barriers pass between the processes)."""
    _, world, _ = launch_env()
    if world > 1 and not torch.distributed.is_initialized():
        own_gpu = device.type == "cuda" and torch.cuda.device_count() >= local_world_size()
        torch.distributed.init_process_group("nccl" if own_gpu else "gloo", timeout=BARRIER_TIMEOUT,
                                             **({"device_id": device} if own_gpu else {}))


def _barrier() -> None:
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()


@dataclasses.dataclass
class BulkResult:
    """What this process did; ``merged`` only on rank 0."""

    parts_scored: int = 0
    parts_found: int = 0
    images: int = 0
    unreadable: int = 0
    merged: Optional[str] = None
    merged_rows: int = 0
    merged_unreadable: int = 0


def score_collection(metrics: Sequence[Any], collection: Collection, folder: ScoreFolder, manifest: Manifest,
                     resume: bool, workers: int, progress: bool) -> BulkResult:
    """Score this process's share of ``collection`` into ``folder``; rank 0 merges at the end.

    Raises:
        OutputError: the folder holds other scores, or this run's without ``resume``, or cannot be
            written (every process checks before anything is scored or written).
    """
    rank, world, _ = launch_env()
    folder.check(manifest, resume)
    _barrier()  # every process has read the folder as it was before rank 0 claims it
    if rank == 0:
        folder.claim(manifest)
    _barrier()
    result = BulkResult()
    names = [m.metric_name for m in metrics]
    for unit in collection.units:
        if unit.index % world != rank:
            continue
        if folder.finished(unit.index):
            result.parts_found += 1
            continue
        refs = unit.images()
        rows = score_rows(metrics, refs, workers, progress, desc=f"part {unit.index} ({unit.label})")
        result.unreadable += folder.write_part(unit.index, collection.key_column, names, rows)
        result.images += len(refs)
        result.parts_scored += 1
        logger.info("rank %d: wrote %s (%d images)", rank, folder.part_path(unit.index).name, len(refs))
    _barrier()
    if rank == 0:
        path, result.merged_rows, result.merged_unreadable = folder.merge(len(collection.units))
        result.merged = str(path)
    return result
