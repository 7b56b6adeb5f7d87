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
from ..utils.worker_guard import guarded_batches, reading_failed
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


def score_files(metrics: Sequence["InferenceMetric"], paths: Sequence[Path], batch_size: int, workers: int,
                progress: bool) -> Iterator[Tuple[Path, Optional[List[float]], Optional[str]]]:
    """Score image files with one or more metrics that cut the same test crops (``crop_spec``,
    ``max_side``): each file is decoded and cropped once, in the workers, for all of them.

    Yields ``(path, [one score per metric], None)``, or ``(path, None, reason)`` for a file that
    cannot be read, in input order (``InferenceMetric.score_files`` is the one-metric form).

    Raises:
        ValueError: no metric, or metrics that cut different crops (score those in separate calls).
    """
    if not metrics:
        raise ValueError("score_files needs at least one metric")
    first = metrics[0]
    if any((m.crop_spec, m.max_side) != (first.crop_spec, first.max_side) for m in metrics[1:]):
        raise ValueError("score_files: the metrics cut different test crops "
                         f"{sorted({str((m.crop_spec, m.max_side)) for m in metrics})}; score them in "
                         "separate calls")
    paths = [Path(p) for p in paths]
    dataset = CropDataset(paths, first.crop_spec, first.max_side)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                        collate_fn=_as_list, pin_memory=first.device.type == "cuda",
                        prefetch_factor=2 if workers > 0 else None)
    bar = tqdm(total=len(paths), unit="img", disable=not progress,
               desc=", ".join(m.metric_name for m in metrics),
               file=sys.stderr)  # never into a CSV written to stdout
    try:
        with torch.no_grad():
            for batch in guarded_batches(loader, reading_failed(f"{len(paths)} images to score")):
                ok = [(i, crops) for i, crops, _ in batch if crops is not None]
                crops = [c for _, c in ok]
                rows = (torch.stack([m.net.score_crops(crops) for m in metrics], dim=1).tolist()
                        if ok else [])  # (images, metrics)
                by_index = {i: row for (i, _), row in zip(ok, rows)}
                for i, _, reason in batch:
                    yield paths[i], by_index.get(i), reason
                bar.update(len(batch))
    finally:
        bar.close()
