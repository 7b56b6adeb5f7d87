"""The one loop that scores every image of an evaluation loader (training validation, ``pyiqa/test.py``
and train_clip's zero-shot evaluation all call it): the score head on each batch's embeddings."""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping

import torch
import torch.nn as nn
from tqdm import tqdm

from ..utils.worker_guard import guarded_batches, reading_failed
from .embedding_feed import as_feed


@torch.no_grad()
def predict(net: nn.Module, loader: Iterable[Mapping[str, Any]], device: torch.device, desc: str = "",
            pbar: bool = False) -> Dict[str, List]:
    """Scores of every image in ``loader`` with the test-time crop protocol of ``net``.

    Runs with ``net`` in eval mode (left there) inside ``fork_rng``, so evaluating never shifts the
    training RNG streams: a run resumed from a checkpoint sees the same random numbers whether or not
    the original run validated there.

    Args:
        net: a UniQA (``forward_features`` / ``test_crop_features`` / ``forward_head``).
        loader: an :class:`~pyiqa.models.embedding_feed.EmbeddingFeed` (the trainer's, live or
            stored), or an image loader, which is fed live: batches with 'img' (tensor or list of
            tensors), 'mos_label' (B, 1) and 'img_path' (B strings), as every registered dataset's items
            collated by ``collate_images``.
        device: where ``net`` runs.
        desc, pbar: tqdm label, and whether to show the bar.

    Returns:
        ``{'pred': [...], 'mos': [...], 'img_path': [...]}``, one entry per image in loader order.
    """
    device = torch.device(device)
    devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        net.eval()
        preds: List[float] = []
        mos: List[float] = []
        paths: List[str] = []
        feed = as_feed(loader, net, device)  # iterated in fork_rng: random10-global's crops draw here
        batches = guarded_batches(feed, reading_failed(desc or "the evaluation images"))
        for batch in tqdm(batches, total=len(loader) if hasattr(loader, "__len__") else None, desc=desc, disable=not pbar, leave=False):
            out = net.forward_head(batch["feat"].to(device), batch.get("counts"))  # (B, 1)
            preds.extend(out.float().flatten().cpu().tolist())
            mos.extend(batch["mos_label"].float().flatten().tolist())
            paths.extend(batch["img_path"])
        return {"pred": preds, "mos": mos, "img_path": paths}
