"""torch.distributed set-up for ``torchrun``: NCCL on GPU, gloo on CPU."""
from __future__ import annotations

import logging
import os
from typing import Optional, Tuple

import torch
import torch.distributed as td

logger = logging.getLogger(__name__)


def init_dist(backend: Optional[str] = None) -> Tuple[int, int, int]:
    """Initialise the default process group from torchrun's environment.

    Returns (rank, local_rank, world_size). The backend defaults to NCCL when CUDA is available and
    gloo otherwise, so the same command trains on GPUs and on CPU-only machines.
    """
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        raise RuntimeError("--launcher pytorch needs torchrun's environment (RANK, WORLD_SIZE, "
                           "MASTER_ADDR); start with: torchrun --nproc_per_node=N -m pyiqa.train -opt X.yml "
                           "--launcher pytorch (CLIP pre-training: -m train_clip.train)")
    if backend is None:
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if backend == "nccl" and not torch.cuda.is_available():
        logger.warning("dist_params.backend is nccl but CUDA is not available: using gloo")
        backend = "gloo"
    local_rank = int(os.environ.get("LOCAL_RANK", 0))
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    td.init_process_group(backend=backend)
    return td.get_rank(), local_rank, td.get_world_size()


def get_rank() -> int:
    return td.get_rank() if td.is_available() and td.is_initialized() else 0


def get_world_size() -> int:
    return td.get_world_size() if td.is_available() and td.is_initialized() else 1


def barrier() -> None:
    if get_world_size() > 1:
        td.barrier()


def cleanup() -> None:
    if td.is_available() and td.is_initialized():
        td.destroy_process_group()
