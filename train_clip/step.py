"""One optimisation step of contrastive pre-training: symmetric InfoNCE, accumulation, precision.

The loss is open_clip's ``ClipLoss``: image and text embeddings are gathered from every rank (with
gradients by default), so the negatives of each pair are the whole global batch, as on one device.
Gradient accumulation follows open_clip's exact scheme: embeddings of all micro-batches are first
computed without gradients, then each micro-batch is recomputed with gradients and the loss is taken
over the full accumulated batch, so ``accum_steps`` changes memory, not the loss.
"""
from __future__ import annotations

import contextlib
import math
from typing import List, Optional, Sequence, Tuple

import torch
from open_clip.loss import ClipLoss

from pyiqa.utils.precision import autocast

MAX_LOGIT_SCALE = math.log(100.0)  # CLIP clamps the temperature multiplier at 100
Batch = Tuple[torch.Tensor, torch.Tensor]  # (images (B, 3, S, S), tokens (B, 77))


def build_loss(local_loss: bool = True, gather_with_grad: bool = True, rank: int = 0,
               world_size: int = 1) -> ClipLoss:
    """open_clip's contrastive loss. ``local_loss``: each rank scores its own rows against all columns
    (memory O(B_local x B) instead of O(B^2)); with ``gather_with_grad`` gradients flow back through the
    gathered embeddings, so both settings give the single-device gradient."""
    return ClipLoss(local_loss=local_loss, gather_with_grad=gather_with_grad, cache_labels=True,
                    rank=rank, world_size=world_size)


class ContrastiveStep:
    """Forward + backward of one optimiser step, then the (scaled, clipped) update.

    Args:
        model: the network called as ``model(images, tokens)`` (DDP-wrapped when distributed).
        raw: the unwrapped CLIP (for ``logit_scale`` and parameters).
        loss: a ``ClipLoss``.
        optimizer: AdamW over ``raw``'s trainable parameters.
        precision: resolved 'fp32', 'bf16' or 'fp16' (fp16 uses a GradScaler).
        device: where the model runs.
        grad_clip_norm: clip the global gradient norm (None: no clipping).
    """

    def __init__(self, model: torch.nn.Module, raw: torch.nn.Module, loss: ClipLoss,
                 optimizer: torch.optim.Optimizer, precision: str, device: torch.device,
                 grad_clip_norm: Optional[float] = None):
        self.model, self.raw, self.loss, self.optimizer = model, raw, loss, optimizer
        self.autocast = autocast(precision, device)
        self.scaler = torch.amp.GradScaler("cuda") if precision == "fp16" else None
        self.grad_clip_norm = grad_clip_norm
        self.ddp = isinstance(model, torch.nn.parallel.DistributedDataParallel)
        self.params = [p for p in raw.parameters() if p.requires_grad]

    def _features(self, images: torch.Tensor, tokens: torch.Tensor):
        with self.autocast():
            image_f, text_f, scale = self.model(images, tokens)[:3]
        # the loss (softmax over the global batch) is computed in float32
        return image_f.float(), text_f.float(), scale.float()

    def _backward(self, loss: torch.Tensor) -> None:
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def forward_backward(self, micro: Sequence[Batch]) -> torch.Tensor:
        """Accumulate the gradients of one step over ``micro`` batches; returns the (local) loss."""
        if len(micro) == 1:
            image_f, text_f, scale = self._features(*micro[0])
            loss = self.loss(image_f, text_f, scale)
            self._backward(loss)
            return loss.detach()
        with torch.no_grad():
            cached = [self._features(images, tokens)[:2] for images, tokens in micro]
        for j, (images, tokens) in enumerate(micro):
            last = j == len(micro) - 1
            sync = contextlib.nullcontext() if last or not self.ddp else self.model.no_sync()
            with sync:
                image_f, text_f, scale = self._features(images, tokens)
                all_image = torch.cat([c[0] for c in cached[:j]] + [image_f] + [c[0] for c in cached[j + 1:]])
                all_text = torch.cat([c[1] for c in cached[:j]] + [text_f] + [c[1] for c in cached[j + 1:]])
                loss = self.loss(all_image, all_text, scale)
                self._backward(loss)
        if self.raw.logit_scale.grad is not None:
            # every micro-batch's loss used the full logit_scale: its gradient was counted len(micro) times
            self.raw.logit_scale.grad.div_(len(micro))
        return loss.detach()

    def step(self, micro: Sequence[Batch]) -> Tuple[torch.Tensor, Optional[float]]:
        """One update. Returns (loss, gradient norm before clipping or None when not clipping)."""
        loss = self.forward_backward(micro)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"Contrastive loss is {loss.item()}; lower train.lr or use fp32/bf16")
        if self.scaler is not None:
            self.scaler.unscale_(self.optimizer)
        norm = None
        if self.grad_clip_norm:
            norm = float(torch.nn.utils.clip_grad_norm_(self.params, float(self.grad_clip_norm)))
        if self.scaler is not None:
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            self.optimizer.step()
        self.optimizer.zero_grad(set_to_none=True)
        with torch.no_grad():
            self.raw.logit_scale.clamp_(0, MAX_LOGIT_SCALE)
        return loss, norm


def split_micro(images: torch.Tensor, tokens: torch.Tensor, accum_steps: int) -> List[Batch]:
    """Cut one rank's batch into ``accum_steps`` equal micro-batches."""
    return list(zip(images.chunk(accum_steps), tokens.chunk(accum_steps)))
