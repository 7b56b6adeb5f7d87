"""Scoring many image files: decode and crop in worker processes, overlapped with the network.

Each worker turns one path into its test crops (uint8, so 4x less to pass between processes) or a
failure reason; the main process concatenates the crops of ``batch_size`` images into one forward pass
while the workers already decode the next batches. A file that cannot be read is reported, never fatal.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, List, Optional, Sequence, Tuple

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..archs.crops import CropSpec, make_crops
from ..data.image_io import decode_image
from ..utils.errors import DataError
from .images import pil_to_tensor

if TYPE_CHECKING:
    from .metric import InferenceMetric

logger = logging.getLogger(__name__)

# (index, crops (K, 3, S, S) or None, failure reason or None)
Item = Tuple[int, Optional[torch.Tensor], Optional[str]]


class CropDataset(Dataset):
    """Paths -> test crops; a decoding failure becomes a reason string instead of an exception."""

    def __init__(self, paths: Sequence[Path], spec: CropSpec, max_side: Optional[int]):
        self.paths = list(paths)
        self.spec = spec
        self.max_side = max_side

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> Item:
        try:
            img = pil_to_tensor(decode_image(self.paths[index], self.max_side))
        except DataError as err:  # reported by the caller with the file name; the rest go on
            return index, None, str(err)
        return index, make_crops(img, self.spec), None


def _as_list(batch: List[Item]) -> List[Item]:
    return batch


def score_files(metric: "InferenceMetric", paths: Sequence[Path], batch_size: int, workers: int,
                progress: bool) -> Iterator[Tuple[Path, Optional[float], Optional[str]]]:
    """See ``InferenceMetric.score_files``."""
    paths = [Path(p) for p in paths]
    dataset = CropDataset(paths, metric.crop_spec, metric.max_side)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                        collate_fn=_as_list, pin_memory=metric.device.type == "cuda",
                        prefetch_factor=2 if workers > 0 else None)
    bar = tqdm(total=len(paths), unit="img", disable=not progress, desc=metric.metric_name,
               file=sys.stderr)  # never into a CSV written to stdout
    try:
        with torch.no_grad():
            for batch in loader:
                ok = [(i, crops) for i, crops, _ in batch if crops is not None]
                scores = metric.net.score_crops([c for _, c in ok]).tolist() if ok else []
                by_index = {i: s for (i, _), s in zip(ok, scores)}
                for i, _, reason in batch:
                    yield paths[i], by_index.get(i), reason
                bar.update(len(batch))
    finally:
        bar.close()
