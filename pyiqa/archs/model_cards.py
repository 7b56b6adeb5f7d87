"""Model cards: the named inference configurations ``pyiqa.create_metric(name)`` builds.

timm's pretrained configs, declared as data for the one UniQA class (``uniqa_arch.UniQA``, which
re-exports this table). Kept in a module of its own that imports neither torch nor open_clip, so
listing the metrics (``pyiqa --list``, ``pyiqa.list_models()``) takes a fraction of a second instead
of the several seconds those imports cost. Weight files are looked up by name, never downloaded.
"""
from __future__ import annotations

import dataclasses
import fnmatch
import re
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from ..utils.errors import ConfigError

BACKBONE_FILE = "UniQA_weight.pt"
# The authors' public download pages of UniQA_weight.pt (their README); no direct-download URL exists.
BACKBONE_DOWNLOAD_PAGES: Tuple[Tuple[str, str], ...] = (
    ("Google Drive", "https://drive.google.com/file/d/1stL1EqYvjkThGDpfPWRQzvbA780FKM4n/view?usp=sharing"),
    ("BaiduNetDisk", "https://pan.baidu.com/s/1XB55QtbimMojGDIJ8h8UnA?pwd=tnnq (code: tnnq)"),
)
# Joint embedding width of the released backbone (CLIP ViT-B/16): the adapter's input/output width.
BACKBONE_EMBED_DIM = 512
# IQA-PyTorch's metric modes: no-reference (one image) and full-reference (image + reference).
METRIC_MODES = ("NR", "FR")
_MULTI_CUE = ["quality", "blur", "noise", "lowhigh"]


@dataclasses.dataclass(frozen=True)
class ModelCard:
    """One named UniQA inference configuration.

    Attributes:
        name: the metric name (``pyiqa.create_metric(name)``).
        description: one line for ``pyiqa --list``.
        options: UniQA constructor options, without ``backbone`` and the test-crop options.
        adapter_file: file name of the trained adapter + levels; ``None`` for zero-shot cards.
        train_config: the shipped config that trains that adapter, as ``pyiqa-train -opt`` takes it (the
            clone path ``options/train/UniQA/<dataset>.yml``, which also names the installed config:
            :func:`pyiqa.utils.shipped_configs.resolve_option_file`).
        lower_better: False: a higher score means better quality.
        score_range: nominal range of the scores.
        metric_mode: 'NR' (scores one image, no reference) or 'FR'; every UniQA card is NR.
    """

    name: str
    description: str
    options: Dict[str, Any]
    adapter_file: Optional[str] = None
    train_config: Optional[str] = None
    lower_better: bool = False
    score_range: Tuple[float, float] = (0.0, 1.0)
    backbone_file: str = BACKBONE_FILE
    arch: str = "UniQA"
    metric_mode: str = "NR"


def _adapter_card(dataset: str, label: str) -> ModelCard:
    """Card of the single-cue adapter that ``options/train/UniQA/<dataset>.yml`` trains."""
    return ModelCard(
        name=f"uniqa-{dataset}",
        description=f"UniQA backbone + single-cue adapter trained on {label} (train it with our config)",
        options=dict(prompts=["quality"], use_adapter=True, learnable_levels=True),
        adapter_file=f"uniqa_{dataset}_adapter.pth",
        train_config=f"options/train/UniQA/{dataset}.yml")


#: (config / card suffix, dataset) of every dataset with a shipped training config. Adapters predict
#: the normalised label (1 = best), so every card scores higher = better, DMOS sets included.
ADAPTER_DATASETS = (
    ("koniq", "KonIQ-10k"), ("livec", "LIVE Challenge"), ("spaq", "SPAQ"), ("flive", "FLIVE (PaQ-2-PiQ)"),
    ("tid2013", "TID2013"), ("csiq", "CSIQ"), ("kadid10k", "KADID-10k"), ("live", "LIVE IQA"),
    ("agiqa3k", "AGIQA-3K"), ("agiqa1k", "AGIQA-1K"), ("ava", "AVA (aesthetics)"), ("aadb", "AADB (aesthetics)"),
    ("aigiqa20k", "AIGIQA-20K"), ("eciqad", "ECIQAD (enhanced colonoscopy)"), ("agin", "AGIN (naturalness)"),
)

MODEL_CARDS: Dict[str, ModelCard] = {card.name: card for card in (
    ModelCard(name="uniqa",
              description="zero-shot UniQA* (quality+blur+noise+low/high prompt ensemble, no adapter)",
              options=dict(prompts=list(_MULTI_CUE), use_adapter=False, learnable_levels=False),
              score_range=(0.2, 1.0)),
    ModelCard(name="uniqa-single",
              description="zero-shot UniQA with the quality prompts only (bad ... perfect image)",
              options=dict(prompts=["quality"], use_adapter=False, learnable_levels=False),
              score_range=(0.2, 1.0)),
    *(_adapter_card(dataset, label) for dataset, label in ADAPTER_DATASETS),
)}


def list_models(metric_mode: Optional[str] = None, filter: Union[str, Sequence[str]] = "",  # noqa: A002
                exclude_filters: Union[str, Sequence[str]] = "") -> List[str]:
    """Names ``create_metric`` accepts, as IQA-PyTorch's ``list_models`` answers.

    Args:
        metric_mode: 'NR' or 'FR' keeps the cards of that mode (every UniQA card is NR, so 'FR' gives
            an empty list); None keeps all.
        filter: a glob (``'uniqa-*'``, ``'*koniq*'``) or a list of globs: the names matching any of
            them (fnmatch, as IQA-PyTorch: a plain word matches only that exact name); '' keeps all.
        exclude_filters: a glob or list of globs; names matching any of them are dropped.

    Returns:
        The names in natural order (digits compared as numbers).

    Raises:
        ConfigError: ``metric_mode`` is neither None, 'NR' nor 'FR', or a filter is not text.
    """
    if metric_mode is not None and metric_mode not in METRIC_MODES:
        hint = (f" To filter by name use list_models(filter={metric_mode!r})."
                if isinstance(metric_mode, str) and metric_mode.upper() not in METRIC_MODES else "")
        raise ConfigError(f"list_models: unknown metric_mode {metric_mode!r}; use one of "
                          f"{list(METRIC_MODES)} or None (all).{hint}")
    names = [n for n, card in MODEL_CARDS.items() if metric_mode is None or card.metric_mode == metric_mode]
    include = _patterns(filter, "filter")
    if include:
        names = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in include)]
    exclude = _patterns(exclude_filters, "exclude_filters")
    names = [n for n in names if not any(fnmatch.fnmatchcase(n, p) for p in exclude)]
    return sorted(names, key=_natural_key)


def _patterns(value: Union[None, str, Sequence[str]], what: str) -> List[str]:
    """A glob or a list/tuple of globs -> list (empty for None or '')."""
    patterns = [value] if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) \
        else [] if value is None else None
    if patterns is None or not all(isinstance(p, str) for p in patterns):
        raise ConfigError(f"list_models: {what} must be a glob string or a list of them, got {value!r}")
    return [p for p in patterns if p]


def _natural_key(name: str) -> List[Any]:
    """'uniqa-agiqa3k' < 'uniqa-agiqa10k': digit runs compare as numbers (IQA-PyTorch's order)."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part) for part in re.split(r"(\d+)", name.lower())]
