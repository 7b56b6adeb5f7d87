"""GeneralIQAModel: one network regressing a MOS, its optimisation, evaluation and checkpoints.

Deliberately small: the training loop lives in :mod:`pyiqa.train` and reads top to bottom; this class
owns the network, the optimiser/scheduler/loss and how their states are saved and restored.
"""
from __future__ import annotations

import logging
import math
from typing import Any, Dict, List

import torch

from ..archs import build_network
from ..losses import build_loss
from ..metrics import calculate_metric
from ..utils.checkpoint import load_checkpoint
from ..utils.errors import CheckpointError
from ..utils.options import as_number
from ..utils.precision import default_precision, resolve_precision, weight_dtype
from ..version import __version__
from .optim import build_optimizer, build_scheduler, warmup_factor
from .predict import predict

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


class GeneralIQAModel:
    """Builds ``opt['network']`` on ``device``; with ``is_train`` also its loss, optimiser and schedule.

    Args:
        opt: the validated experiment options (read, never modified).
        device: where the network runs.
        is_train: build optimisation state.
        world_size: >1 wraps the network in DDP, syncing only the trainable tensors.
    """

    def __init__(self, opt: Dict[str, Any], device: torch.device, is_train: bool = True,
                 world_size: int = 1):
        self.opt = opt
        self.device = device
        self.precision = resolve_precision(opt.get("precision", default_precision(opt)), device)
        # the frozen CLIP's image tower is loaded in the precision's dtype; adapter and levels stay fp32
        self.net = build_network(opt["network"], backbone_dtype=weight_dtype(self.precision))
        self.net.to(device)
        path_opt = opt.get("path") or {}
        if path_opt.get("pretrain_network_g"):
            self.load_network(path_opt["pretrain_network_g"], path_opt.get("strict_load_g", True),
                              path_opt.get("param_key_g") or "params")
        self.train_net = self.net
        if world_size > 1:
            self.train_net = self._wrap_ddp(bool(opt.get("find_unused_parameters", False)))
        if not is_train:
            return
        train_opt = opt["train"]
        self.loss = build_loss(train_opt["mos_loss_opt"], "train.mos_loss_opt").to(device)
        # optional second term (pyiqa's metric_loss_opt, e.g. PLCCLoss), added to the MOS loss
        self.metric_loss = (build_loss(train_opt["metric_loss_opt"], "train.metric_loss_opt").to(device)
                            if train_opt.get("metric_loss_opt") else None)
        named = [(n, p) for n, p in self.net.named_parameters() if p.requires_grad]
        trainable = [p for _, p in named]
        self.optimizer = build_optimizer(named, train_opt["optim"])
        self.scheduler = build_scheduler(self.optimizer, train_opt.get("scheduler"))
        self.warmup_iter = train_opt.get("warmup_iter", -1)
        clip = train_opt.get("grad_clip_norm")
        self.grad_clip_norm = as_number(clip) if clip is not None else None  # validated: > 0
        n_train = sum(p.numel() for p in trainable)
        n_all = sum(p.numel() for p in self.net.parameters())
        logger.info("Network %s: %s parameters, %s trainable; frozen CLIP image tower in %s",
                    opt["network"]["type"], f"{n_all:,}", f"{n_train:,}", self.precision)

    # ----------------------------------------------------------------------------------- set-up
    def _wrap_ddp(self, find_unused: bool) -> torch.nn.Module:
        """DDP over the whole module but syncing only trainable tensors: the frozen CLIP is ignored,
        so neither its 150M parameters nor its buffers are broadcast or all-reduced."""
        from torch.nn.parallel import DistributedDataParallel as DDP
        frozen = [n for n, p in self.net.named_parameters() if not p.requires_grad]
        frozen += [n for n, _ in self.net.named_buffers()]
        DDP._set_params_and_buffers_to_ignore_for_model(self.net, frozen)
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DDP(self.net, device_ids=ids, find_unused_parameters=find_unused)

    def load_network(self, path: str, strict: bool = True, param_key: str = "params") -> None:
        params = extract_params(load_checkpoint(path), param_key, path)
        try:
            self.net.load_trainable_state_dict(params, strict=strict)
        except CheckpointError as e:
            raise CheckpointError(f"path.pretrain_network_g {path}: {e}") from e
        logger.info("Loaded network weights from %s (strict=%s)", path, strict)

    # ----------------------------------------------------------------------------------- training
    def train_step(self, batch: Dict[str, Any], current_iter: int, step_scheduler: bool) -> Dict[str, float]:
        """One optimisation step on a batch of crops; returns the logged losses."""
        # the inner network's flag (evaluation switches self.net, not a DDP wrapper); only after an
        # evaluation: walking the CLIP's modules on every step took half a cached step's time
        if not self.net.training:
            self.train_net.train()
        mos = batch["mos_label"].to(self.device, non_blocking=True).float()
        if "feat" in batch:  # cached tower embeddings (train.feature_cache)
            pred = self.train_net(batch["feat"].to(self.device, non_blocking=True), embedded=True)
        else:
            pred = self.train_net(batch["img"].to(self.device, non_blocking=True))
        terms = {"l_mos": self.loss(pred, mos)}
        if self.metric_loss is not None:
            terms["l_metric"] = self.metric_loss(pred, mos)
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
        factor = warmup_factor(current_iter, self.warmup_iter)
        scheduled = [g["lr"] for g in self.optimizer.param_groups]
        for g, lr in zip(self.optimizer.param_groups, scheduled):
            g["lr"] = lr * factor
        self.optimizer.step()
        self.last_lr = scheduled[0] * factor
        for g, lr in zip(self.optimizer.param_groups, scheduled):
            g["lr"] = lr
        if step_scheduler:
            self.scheduler.step()
        return logged

    def current_lr(self) -> float:
        """The learning rate the last step used (warm-up included); the first parameter group's when
        ``train.optim`` sets per-module rates."""
        return self.last_lr

    # ----------------------------------------------------------------------------------- evaluation
    def predict(self, loader, desc: str = "", pbar: bool = False) -> Dict[str, List]:
        """Scores of every image in ``loader``; see ``pyiqa.models.predict.predict``."""
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
                "arch": {"type": self.opt["network"]["type"], **self.net.arch_options},
                "precision": self.precision, "iter": current_iter, "version": __version__, "config": self.opt}

    def training_state(self) -> Dict[str, Any]:
        return {"params": self.net.trainable_state_dict(), "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict()}

    def load_training_state(self, state: Dict[str, Any]) -> None:
        self.net.load_trainable_state_dict(state["params"], strict=True)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
