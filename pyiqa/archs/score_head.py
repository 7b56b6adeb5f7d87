"""UniQA's score head: tower embeddings -> quality scores (adapter, prompt similarities, score levels).

The part of UniQA that trains, and everything it reads, in one module: the training loop feeds it
embeddings, live from the frozen tower or stored by the feature cache, and DDP wraps it alone.
"""
from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

NUM_LEVELS = 5  # prompts per group and score levels, low to high quality


class Adapter(nn.Module):
    """Bias-free bottleneck D -> hidden -> D with ReLUs; keys ``fc.0.weight``, ``fc.2.weight``."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.fc = nn.Sequential(nn.Linear(dim, hidden, bias=False), nn.ReLU(inplace=True),
                                nn.Linear(hidden, dim, bias=False), nn.ReLU(inplace=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class ScoreHead(nn.Module):
    """Tower embeddings -> quality scores: adapter, prompt similarities, score levels.

    The trainable part of UniQA (adapter and levels), with what it reads from the frozen CLIP taken once
    (the prompts' text embeddings and the logit scale, :meth:`UniQA.refresh_text_features`), so that it
    is a module of its own: DDP wraps it alone, and cached embeddings need nothing else. Its own
    tensors are ``score_level`` and ``adapter.fc.{0,2}.weight``, the release's checkpoint keys.

    Args:
        dim: embedding width D.
        hidden: adapter bottleneck width (ignored without an adapter).
        use_adapter: False gives the zero-shot head (f' = f).
        score_levels: initial levels, low to high.
        learnable_levels: train the levels (else a fixed buffer).
    """

    def __init__(self, dim: int, hidden: int, use_adapter: bool, score_levels: Sequence[float],
                 learnable_levels: bool):
        super().__init__()
        self.adapter: Optional[Adapter] = Adapter(dim, hidden) if use_adapter else None
        levels = torch.tensor([float(s) for s in score_levels])
        if learnable_levels:
            self.score_level = nn.Parameter(levels)
        else:
            self.register_buffer("score_level", levels)
        # set by UniQA.refresh_text_features: unit-norm prompt embeddings (G*5, D) and CLIP's log scale
        self.register_buffer("text_features", torch.empty(0), persistent=False)
        self.register_buffer("logit_scale", torch.zeros(()), persistent=False)

    def group_scores(self, f: torch.Tensor) -> torch.Tensor:
        """Per-group scores (N, G) of tower embeddings ``f`` (N, D)."""
        f = f.float()
        if self.adapter is not None:
            a = self.adapter(f.to(self.adapter.fc[0].weight.dtype)).float()
            f = f + a  # unscaled residual
        f = F.normalize(f, dim=-1)
        t = self.text_features.float()  # (G*5, D), already unit norm
        logits = self.logit_scale.float().exp() * f @ t.t()  # (N, G*5)
        probs = logits.view(f.shape[0], -1, NUM_LEVELS).softmax(dim=-1)  # (N, G, 5)
        return (probs * self.score_level.float()).sum(dim=-1)  # (N, G)

    def forward(self, f: torch.Tensor, counts: Optional[Sequence[int]] = None) -> torch.Tensor:
        """Scores (N, 1), the mean over prompt groups, and over an image's crops where it has several.

        Args:
            f: embeddings (N, D), one crop per image; (N, T, D), T crops per image; or (sum T_i, D)
                with ``counts``.
            counts: the crops T_i of each image, when the images' crops come as one block of rows
                (the live evaluation feed, ``UniQA.score_crops``), in the order of ``f``'s rows.
        """
        if not torch.is_tensor(f) or f.dim() not in (2, 3) or (counts is not None and f.dim() != 2):
            shape = tuple(f.shape) if torch.is_tensor(f) else type(f).__name__
            raise ValueError(f"forward_head expects embeddings (N, D), (N, T, D) or (sum T_i, D) with "
                             f"counts, got {shape}{' with counts' if counts is not None else ''}")
        if f.dim() == 2 and counts is None:
            return self.group_scores(f).mean(dim=-1, keepdim=True)  # (N, 1)
        per_crop = self.group_scores(f.reshape(-1, f.shape[-1])).mean(dim=-1)  # (N*T,) or (sum T_i,)
        if counts is None:
            return per_crop.view(f.shape[0], -1).mean(dim=1, keepdim=True)  # (N, 1)
        counts = [int(c) for c in counts]
        if sum(counts) != f.shape[0] or min(counts, default=0) < 1:
            raise ValueError(f"forward_head: counts {counts} (sum {sum(counts)}) do not split the "
                             f"{f.shape[0]} embeddings into images of at least one crop each")
        return torch.stack([s.mean() for s in per_crop.split(counts)]).unsqueeze(-1)  # (N, 1)
