"""What pre-training is for, measured while it runs: zero-shot IQA and image-text retrieval.

* Zero-shot IQA: SRCC/PLCC of UniQA's prompt score (no adapter, fixed levels) with the CLIP being
  trained, on any labelled dataset the core reads (``eval.iqa``: pyiqa dataset sections).
* Retrieval: R@1 image->text and text->image on held-out pairs (``eval.retrieval.sources``). Quality
  captions repeat ("a fair quality photo"), so a hit is a retrieved item whose caption *text* equals the
  query's, not only the paired item.
"""
from __future__ import annotations

import copy
import logging
from typing import Any, Callable, ContextManager, Dict, List, Tuple

import torch
import torch.nn.functional as F
from open_clip.model import CLIP
from torch.utils.data import DataLoader

from pyiqa.archs.uniqa_arch import UniQA
from pyiqa.data import build_dataset, collate_images
from pyiqa.metrics import calculate_plcc, calculate_srcc
from pyiqa.data.loader_options import loader_options
from pyiqa.models.predict import predict
from pyiqa.utils.errors import ConfigError

from .data import CaptionDataset, build_samples, clip_transform, collate

logger = logging.getLogger(__name__)


class Evaluator:
    """Builds the evaluation sets of the YAML's ``eval`` section once; ``__call__`` scores a model.

    Args:
        opt: the ``eval`` section.
        image_size, context_length: of the model being trained.
        device: where to evaluate.
        autocast: the training precision's context factory.
    """

    def __init__(self, opt: Dict[str, Any], image_size: int, context_length: int, device: torch.device,
                 autocast: Callable[[], ContextManager]):
        self.opt, self.device, self.autocast = opt, device, autocast
        self.image_size = image_size
        self.iqa_sets: List[Tuple[str, Any, DataLoader]] = []
        for name, d_opt in (opt.get("iqa") or {}).items():
            if not isinstance(d_opt, dict):
                raise ConfigError(f"'eval.iqa.{name}' must be a pyiqa dataset section, got {d_opt!r}")
            ds = build_dataset(d_opt, "test", where=f"eval.iqa.{name}")
            workers = loader_options(d_opt, f"eval.iqa.{name}").num_worker_per_gpu
            loader = DataLoader(ds, batch_size=int(opt.get("batch_size", 8)), shuffle=False,
                                num_workers=workers, collate_fn=collate_images)
            self.iqa_sets.append((name, ds, loader))
            logger.info("eval.iqa.%s: %d labelled images (zero-shot SRCC/PLCC)", name, len(ds))
        self.retrieval = None
        ret = opt.get("retrieval")
        if ret:
            samples = build_samples(ret["sources"], "eval.retrieval.sources")[: int(ret.get("max_pairs", 1000))]
            ds = CaptionDataset(samples, clip_transform(image_size, is_train=False), context_length, train=False)
            self.retrieval = DataLoader(ds, batch_size=int(ret.get("batch_size", 64)), shuffle=False,
                                        collate_fn=collate)
            logger.info("eval.retrieval: %d held-out image-caption pairs (R@1)", len(ds))

    @property
    def enabled(self) -> bool:
        return bool(self.iqa_sets) or self.retrieval is not None

    @torch.no_grad()
    def __call__(self, model: CLIP) -> Dict[str, float]:
        """Metrics keyed 'iqa/<set>/srcc', 'iqa/<set>/plcc', 'retrieval/i2t_r1', 'retrieval/t2i_r1'.

        Runs in ``fork_rng`` so evaluating never shifts a random stream of the training run.
        """
        was_training = model.training
        model.eval()
        devices = [self.device] if self.device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices), self.autocast():
                results = self._iqa(model)
                if self.retrieval is not None:
                    results.update(self._retrieval(model))
        finally:
            model.train(was_training)
        return results

    def _iqa(self, model: CLIP) -> Dict[str, float]:
        if not self.iqa_sets:
            return {}
        frozen = copy.deepcopy(model)  # UniQA freezes its backbone; the training model must stay trainable
        net = UniQA(backbone="train_clip (in memory)", clip_model=frozen, use_adapter=False,
                    learnable_levels=False, prompts=list(self.opt.get("prompts", ["quality"])),
                    sample_size=self.image_size, test_crop=self.opt.get("test_crop", "center"),
                    num_crops=int(self.opt.get("num_crops", 10))).to(self.device).eval()
        out = {}
        for name, _, loader in self.iqa_sets:
            result = predict(net, loader, self.device, desc=f"eval.iqa.{name}")
            out[f"iqa/{name}/srcc"] = calculate_srcc(result["pred"], result["mos"])
            out[f"iqa/{name}/plcc"] = calculate_plcc(result["pred"], result["mos"])
        return out

    def _retrieval(self, model: CLIP) -> Dict[str, float]:
        image_f, text_f, captions = [], [], []
        for batch in self.retrieval:
            image_f.append(F.normalize(model.encode_image(batch["image"].to(self.device)).float(), dim=-1))
            text_f.append(F.normalize(model.encode_text(batch["text"].to(self.device)).float(), dim=-1))
            captions.extend(batch["caption"])
        sim = torch.cat(image_f) @ torch.cat(text_f).t()  # (N images, N texts); pair i is (i, i)
        ids = {c: k for k, c in enumerate(dict.fromkeys(captions))}
        label = torch.tensor([ids[c] for c in captions], device=sim.device)  # caption text id per pair
        i2t = (label[sim.argmax(dim=1)] == label).float().mean().item()
        t2i = (label[sim.argmax(dim=0)] == label).float().mean().item()
        return {"retrieval/i2t_r1": i2t, "retrieval/t2i_r1": t2i}
