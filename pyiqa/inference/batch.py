"""Scoring many images: decode and crop in worker processes, overlapped with the network.

Each worker turns one input (an image file, or a member of a tar shard: an
:class:`~pyiqa.inference.collection.ImageRef`) into its test crops (uint8, so 4x less to pass between
processes) or a failure reason; the main process concatenates the crops of ``batch_size`` images into
one forward pass while the workers already decode the next batches (pinned memory and non-blocking
copies on a GPU). An input that cannot be read is reported, never fatal.
"""
from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, Iterator, List, Optional, Sequence, Tuple

import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from ..archs.crops import CropSpec, make_crops
from ..data.image_io import decode_image, decode_image_bytes
from ..utils.errors import DataError
from ..utils.worker_guard import guarded_batches, reading_failed
from .collection import ImageRef
from .images import pil_to_tensor

if TYPE_CHECKING:
    from .metric import InferenceMetric

logger = logging.getLogger(__name__)

# (index, crops (K, 3, S, S) or None, failure reason or None)
Item = Tuple[int, Optional[torch.Tensor], Optional[str]]
# (input, one score per metric or None, failure reason or None)
Row = Tuple[ImageRef, Optional[List[float]], Optional[str]]


class CropDataset(Dataset):
    """Inputs -> test crops; a decoding failure becomes a reason string instead of an exception."""

    def __init__(self, refs: Sequence[ImageRef], spec: CropSpec, max_side: Optional[int]):
        self.refs = list(refs)
        self.spec = spec
        self.max_side = max_side

    def __len__(self) -> int:
        return len(self.refs)

    def __getitem__(self, index: int) -> Item:
        ref = self.refs[index]
        if ref.error is not None:
            return index, None, ref.error
        try:
            if ref.offset >= 0:  # a member of a tar shard
                img = decode_image_bytes(ref.read(), ref.key, self.max_side)
            else:
                img = decode_image(ref.path, self.max_side)
        except (DataError, OSError) as err:  # reported by the caller with the input's name; the rest go on
            return index, None, str(err)
        return index, make_crops(pil_to_tensor(img), self.spec), None


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
    paths = [Path(p) for p in paths]
    refs = [ImageRef(str(p), str(p)) for p in paths]
    for i, (_, row, reason) in enumerate(score_refs(metrics, refs, batch_size, workers, progress)):
        yield paths[i], row, reason


def score_refs(metrics: Sequence["InferenceMetric"], refs: Sequence[ImageRef], batch_size: int, workers: int,
               progress: bool, desc: Optional[str] = None) -> Iterator[Row]:
    """:func:`score_files` for any inputs (files, tar members, rows known to be unreadable)."""
    if not metrics:
        raise ValueError("score_files needs at least one metric")
    first = metrics[0]
    if any((m.crop_spec, m.max_side) != (first.crop_spec, first.max_side) for m in metrics[1:]):
        raise ValueError("score_files: the metrics cut different test crops "
                         f"{sorted({str((m.crop_spec, m.max_side)) for m in metrics})}; score them in "
                         "separate calls")
    refs = list(refs)
    dataset = CropDataset(refs, first.crop_spec, first.max_side)
    cuda = first.device.type == "cuda"
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                        collate_fn=_as_list, pin_memory=cuda, prefetch_factor=2 if workers > 0 else None)
    bar = tqdm(total=len(refs), unit="img", disable=not progress,
               desc=desc or ", ".join(m.metric_name for m in metrics),
               file=sys.stderr)  # never into a CSV written to stdout
    try:
        with torch.no_grad():
            for batch in guarded_batches(loader, reading_failed(f"{len(refs)} images to score")):
                ok = [(i, crops) for i, crops, _ in batch if crops is not None]
                crops = [c for _, c in ok]  # pinned by the loader on a GPU: copied without blocking
                rows = (torch.stack([m.net.score_crops(crops) for m in metrics], dim=1).tolist()
                        if ok else [])  # (images, metrics)
                by_index = {i: row for (i, _), row in zip(ok, rows)}
                for i, _, reason in batch:
                    yield refs[i], by_index.get(i), reason
                bar.update(len(batch))
    finally:
        bar.close()


def score_rows(metrics: Sequence["InferenceMetric"], refs: Sequence[ImageRef], workers: int, progress: bool,
               desc: Optional[str] = None) -> Iterator[Row]:
    """One row per input in order: every metric's score, or the reason the input could not be read.

    Metrics sharing a crop protocol (all but adapters that store another crop size) are scored in
    one pass over the inputs, each image decoded once; with several passes the rows are gathered and
    given at the end."""
    passes: Dict[Any, List[int]] = {}  # crop protocol -> columns
    for column, metric in enumerate(metrics):
        passes.setdefault((metric.crop_spec, metric.max_side, metric.batch_size), []).append(column)
    if len(passes) == 1:
        yield from score_refs(metrics, refs, metrics[0].batch_size, workers, progress, desc)
        return
    refs = list(refs)
    scores: List[List[Optional[float]]] = [[None] * len(metrics) for _ in refs]
    reasons: Dict[int, str] = {}
    for columns in passes.values():
        group = [metrics[c] for c in columns]
        for i, (_, row, reason) in enumerate(score_refs(group, refs, group[0].batch_size, workers, progress,
                                                        desc)):
            if reason is not None:
                reasons.setdefault(i, reason)  # the same input fails in every pass: told once
                continue
            for column, score in zip(columns, row):
                scores[i][column] = score
    for i, ref in enumerate(refs):
        yield ref, None if i in reasons else scores[i], reasons.get(i)
