"""IQAModel: the network that regresses a MOS, its optimisation, evaluation and checkpoints.

Deliberately small: the training loop lives in :mod:`pyiqa.train` and reads top to bottom; this class
owns the network, the optimiser/scheduler/loss and how their states are saved and restored.
"""
from __future__ import annotations

import logging
import math
from typing import TYPE_CHECKING, Any, Dict, List

import torch

from ..archs import build_network
from ..losses import build_loss
from ..metrics import calculate_metric
from ..utils.checkpoint import load_checkpoint
from ..utils.errors import CheckpointError
from ..utils.precision import resolve_precision, weight_dtype
from ..version import __version__
from .compiled_step import compiled
from .optim import build_optimizer, build_scheduler, warmed_up, warmup_factor
from .predict import predict

if TYPE_CHECKING:
    from ..engine.options import ExperimentConfig

logger = logging.getLogger(__name__)


def extract_params(ckpt: Any, param_key: str, path: str) -> Dict[str, torch.Tensor]:
    """The trainable tensors of a network checkpoint: ours, the release's ``{'params': ...}``, or bare."""
    if isinstance(ckpt, dict) and param_key in ckpt and isinstance(ckpt[param_key], dict):
        return ckpt[param_key]
    if isinstance(ckpt, dict) and ckpt and all(isinstance(v, torch.Tensor) for v in ckpt.values()):
        return ckpt
    keys = list(ckpt)[:10] if isinstance(ckpt, dict) else type(ckpt).__name__
    raise CheckpointError(f"{path} holds no '{param_key}' entry with network weights (found: {keys}); "
                          f"set path.param_key_g to the key that holds them")


class IQAModel:
    """Builds ``config.network`` on ``device``; with ``is_train`` also its loss, optimiser and schedule.
    (The release's YAMLs name it ``model_type: GeneralIQAModel``; there is this one class.)

    Args:
        config: the parsed experiment (its ``precision`` resolved: :func:`pyiqa.engine.options.parse_options`).
        device: where the network runs.
        is_train: build optimisation state.
        world_size: >1 wraps the score head (the only part that trains) in DDP.
    """

    def __init__(self, config: "ExperimentConfig", device: torch.device, is_train: bool = True,
                 world_size: int = 1):
        self.config = config
        self.device = device
        self.precision = resolve_precision(config.precision or "fp32", device)
        # the frozen CLIP's image tower is loaded in the precision's dtype; adapter and levels stay fp32
        self.net = build_network(config.network, backbone_dtype=weight_dtype(self.precision))
        self.net.to(device)
        path = config.path
        if path.pretrain_network_g:
            self.load_network(path.pretrain_network_g, path.strict_load_g, path.param_key_g)
        self.train_head = self.net.head  # what train_step calls: the head, DDP-wrapped across processes
        if world_size > 1:
            self.train_head = self._wrap_ddp(config.find_unused_parameters)
        if not is_train:
            return
        tr = config.train
        self.loss = build_loss(tr.mos_loss_opt, "train.mos_loss_opt").to(device)
        # optional second term (pyiqa's metric_loss_opt, e.g. PLCCLoss), added to the MOS loss
        self.metric_loss = (build_loss(tr.metric_loss_opt, "train.metric_loss_opt").to(device)
                            if tr.metric_loss_opt else None)
        # the head's names ('adapter.fc.0.weight', 'score_level'): train.optim's lr_<module> keys name them
        named = [(n, p) for n, p in self.net.head.named_parameters() if p.requires_grad]
        trainable = [p for _, p in named]
        self.optimizer = build_optimizer(named, tr.optim)
        self.scheduler = build_scheduler(self.optimizer, tr.scheduler)
        self.warmup_iter = tr.warmup_iter
        self.loss_terms = compiled(self._loss_terms, tr.compile, device)  # train.compile: fused, CUDA graphs
        self.grad_clip_norm = tr.grad_clip_norm
        n_train = sum(p.numel() for p in trainable)
        n_all = sum(p.numel() for p in self.net.parameters())
        logger.info("Network %s: %s parameters, %s trainable; frozen CLIP image tower in %s",
                    config.network["type"], f"{n_all:,}", f"{n_train:,}", self.precision)

    # ----------------------------------------------------------------------------------- set-up
    def _wrap_ddp(self, find_unused: bool) -> torch.nn.Module:
        """DDP over the score head alone: the frozen CLIP runs outside it (the feed embeds the images),
        so its 150M parameters are never broadcast or all-reduced. The head's buffers (prompt embeddings,
        logit scale, fixed levels) are the same on every rank: not broadcast at each step either."""
        from torch.nn.parallel import DistributedDataParallel as DDP
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DDP(self.net.head, device_ids=ids, find_unused_parameters=find_unused, broadcast_buffers=False)

    def load_network(self, path: str, strict: bool = True, param_key: str = "params") -> None:
        params = extract_params(load_checkpoint(path), param_key, path)
        try:
            self.net.load_trainable_state_dict(params, strict=strict)
        except CheckpointError as e:
            raise CheckpointError(f"path.pretrain_network_g {path}: {e}") from e
        logger.info("Loaded network weights from %s (strict=%s)", path, strict)

    # ----------------------------------------------------------------------------------- training
    def train_step(self, batch: Dict[str, Any], current_iter: int, step_scheduler: bool) -> Dict[str, float]:
        """One optimisation step of the score head on a batch's embeddings ``feat`` (B, D), live or
        stored (:mod:`pyiqa.models.embedding_feed`); returns the logged losses."""
        # only after an evaluation (which switches self.net): walking the CLIP's modules on every step
        # took half a cached step's time
        if not self.net.training:
            self.net.train()
        mos = batch["mos_label"].to(self.device, non_blocking=True).float()
        terms = self.loss_terms(batch["feat"].to(self.device, non_blocking=True), mos)
        loss = sum(terms.values())
        values = torch.stack([v.detach().float() for v in terms.values()] + [loss.detach().float()]).tolist()
        logged = {**dict(zip(terms, values)), "l_total": values[-1]}  # one host sync per step
        if not math.isfinite(values[-1]):
            parts = ", ".join(f"{k} {v}" for k, v in logged.items() if k != "l_total")
            raise FloatingPointError(f"Loss is {values[-1]} ({parts}) at iteration {current_iter}; lower the "
                                     f"learning rate or check the MOS values")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.grad_clip_norm:
            params = [p for g in self.optimizer.param_groups for p in g["params"]]  # every group's tensors
            torch.nn.utils.clip_grad_norm_(params, self.grad_clip_norm)
        with warmed_up(self.optimizer, warmup_factor(current_iter, self.warmup_iter)) as self.last_lr:
            self.optimizer.step()
        if step_scheduler:
            self.scheduler.step()
        return logged

    def _loss_terms(self, feat: torch.Tensor, mos: torch.Tensor) -> Dict[str, torch.Tensor]:
        """The loss terms of the head's scores of ``feat`` (B, D) against ``mos`` (B, 1)."""
        pred = self.train_head(feat)  # (B, 1)
        terms = {"l_mos": self.loss(pred, mos)}
        if self.metric_loss is not None:
            terms["l_metric"] = self.metric_loss(pred, mos)
        return terms

    def current_lr(self) -> float:
        """The learning rate the last step used (warm-up included); the first parameter group's when
        ``train.optim`` sets per-module rates."""
        return self.last_lr

    # ----------------------------------------------------------------------------------- evaluation
    def predict(self, loader, desc: str = "", pbar: bool = False) -> Dict[str, List]:
        """Scores of every image in ``loader`` (an embedding feed or an image loader); see
        ``pyiqa.models.predict.predict``."""
        return predict(self.net, loader, self.device, desc, pbar)

    def evaluate(self, loader, metrics_opt: Dict[str, Dict], desc: str = "", pbar: bool = False):
        """(metrics dict, predictions dict) of the network on ``loader``."""
        result = self.predict(loader, desc, pbar)
        metrics = {name: calculate_metric(m_opt, result["pred"], result["mos"], where=f"val.metrics.{name}")
                   for name, m_opt in metrics_opt.items()}
        return metrics, result

    # ----------------------------------------------------------------------------------- checkpoints
    def network_checkpoint(self, current_iter: int) -> Dict[str, Any]:
        """Only the trainable tensors (the frozen CLIP is never saved) plus what rebuilds the model."""
        return {"params": self.net.trainable_state_dict(),
                "arch": {"type": self.config.network["type"], **self.net.arch_options},
                "precision": self.precision, "iter": current_iter, "version": __version__,
                "config": self.config.to_dict()}

    def training_state(self) -> Dict[str, Any]:
        return {"params": self.net.trainable_state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict()}

    def load_training_state(self, state: Dict[str, Any]) -> None:
        self.net.load_trainable_state_dict(state["params"], strict=True)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
