"""A training sampler whose order is a pure function of (seed, epoch), so a resumed run can skip the
batches it already trained on and see exactly the samples the uninterrupted run would have seen."""
from __future__ import annotations

import math
from typing import Iterator

import torch
from torch.utils.data import Sampler


class ResumableSampler(Sampler[int]):
    """Shuffled (or ordered) indices for one rank, with ``set_epoch(epoch, skip)``.

    Args:
        num_samples: dataset length.
        shuffle: permute indices each epoch.
        seed: base seed; epoch ``e`` uses ``seed + e``.
        rank, world_size: this process's share of every epoch (padded so all ranks get equally many,
            as DistributedSampler does).
    """

    def __init__(self, num_samples: int, shuffle: bool = True, seed: int = 0, rank: int = 0,
                 world_size: int = 1):
        self.num_samples_total = num_samples
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.per_rank = math.ceil(num_samples / world_size)
        self.epoch = 0
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        """Select the epoch's permutation and drop its first ``skip`` samples of this rank."""
        self.epoch = epoch
        self.skip = skip

    def __iter__(self) -> Iterator[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed + self.epoch)
            order = torch.randperm(self.num_samples_total, generator=g).tolist()
        else:
            order = list(range(self.num_samples_total))
        total = self.per_rank * self.world_size
        order += order[: total - len(order)]
        mine = order[self.rank:total:self.world_size]
        return iter(mine[self.skip:])

    def __len__(self) -> int:
        return max(self.per_rank - self.skip, 0)
