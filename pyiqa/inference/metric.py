"""``create_metric(name)``: a ready-to-score UniQA module built from a model card.

The returned ``InferenceMetric`` takes paths, PIL images, numpy arrays or tensors and returns one
float score per image (higher = better). Crops of a batch of images go through the frozen CLIP in one
forward pass; the prompt embeddings are computed once and the text tower is then freed.
"""
from __future__ import annotations

import difflib
import inspect
import logging
from pathlib import Path
from typing import Any, Iterator, Optional, Sequence, Tuple, Union

import torch
import torch.nn as nn

from ..archs.crops import CropSpec, make_crops
from ..archs.model_cards import list_models  # torch-free, so listing stays instant; re-exported
from ..archs.uniqa_arch import MODEL_CARDS, TEST_CROPS, ModelCard, UniQA
from ..utils.errors import CheckpointError, ConfigError
from ..utils.precision import resolve_precision
from ..utils.registry import closest
from . import weights
from .images import DEFAULT_MAX_SIDE, InputError, chunks, load_item, split_inputs

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]
LOSS_REDUCTIONS = ("mean", "sum", "none")
DEFAULT_BATCH = {"cpu": 4, "cuda": 32}  # images per forward pass (x 10 crops each)


def get_card(name: str) -> ModelCard:
    """The model card of ``name``; an unknown name lists the close matches and all names."""
    if name not in MODEL_CARDS:
        close = difflib.get_close_matches(str(name), list(MODEL_CARDS), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ConfigError(f"Unknown metric '{name}'.{hint} Available: {', '.join(list_models())}")
    return MODEL_CARDS[name]


class InferenceMetric(nn.Module):
    """A no-reference quality metric: ``metric(images) -> (N,)`` float scores, higher is better.

    Build it with ``pyiqa.create_metric``. Attributes follow pyiqa: ``metric_name``, ``metric_mode``
    ('NR', the card's), ``lower_better``, ``score_range``, ``as_loss``; plus ``precision``, ``weights``
    (the files used) and ``card``.
    """

    metric_mode = "NR"  # every UniQA card is no-reference; set from the card in __init__

    def __init__(self, net: UniQA, card: ModelCard, precision: str, as_loss: bool = False,
                 loss_weight: float = 1.0, loss_reduction: str = "mean",
                 max_side: Optional[int] = DEFAULT_MAX_SIDE, batch_size: Optional[int] = None,
                 weight_files: Optional[dict] = None):
        super().__init__()
        self.net = net
        self.card = card
        self.metric_name = card.name
        self.metric_mode = card.metric_mode
        self.lower_better = card.lower_better
        self.score_range = card.score_range
        self.precision = precision
        self.as_loss = as_loss
        self.loss_weight = loss_weight
        self.loss_reduction = loss_reduction
        self.max_side = max_side
        self._batch_size = batch_size
        self.weights = dict(weight_files or {})

    @property
    def device(self) -> torch.device:
        return self.net.mean.device

    @property
    def crop_spec(self) -> CropSpec:
        """The network's test-crop protocol (what the decoding workers of ``score_files`` cut)."""
        return self.net.crop_spec

    @property
    def batch_size(self) -> int:
        """Images per forward pass (their crops are batched together)."""
        return self._batch_size or DEFAULT_BATCH.get(self.device.type, 4)

    def train(self, mode: bool = True) -> "InferenceMetric":
        """The network always stays in eval mode: a metric scores with its test crops."""
        super().train(mode)
        self.net.eval()
        return self

    def forward(self, x: Any) -> torch.Tensor:
        """Score images.

        Args:
            x: a path (str/Path), a PIL image, a numpy HxWx3 uint8 array, a tensor (N, 3, H, W) or
                (3, H, W) in [0, 1], or a list mixing these with any sizes.

        Returns:
            (N,) float32 scores on ``self.device``, one per image in input order. With
            ``as_loss=True``: ``loss_weight`` times their mean (``loss_reduction``), differentiable
            w.r.t. tensor inputs.
        """
        items = split_inputs(x)
        if not items:
            raise InputError("No images to score (empty list).")
        with torch.set_grad_enabled(self.as_loss):
            scores = torch.cat([
                self.net.score_crops([make_crops(load_item(item, self.max_side), self.crop_spec)
                                      for item in chunk])
                for chunk in chunks(items, self.batch_size)])
        if not self.as_loss:
            return scores
        if self.loss_reduction == "mean":
            scores = scores.mean()
        elif self.loss_reduction == "sum":
            scores = scores.sum()
        return self.loss_weight * scores

    def score_files(self, paths: Sequence[PathLike], batch_size: Optional[int] = None,
                    workers: int = 0, progress: bool = False) -> Iterator[Tuple[Path, Optional[float],
                                                                              Optional[str]]]:
        """Score image files, decoding them in ``workers`` processes while the network runs.

        Yields ``(path, score, None)``, or ``(path, None, reason)`` for a file that cannot be read, in
        input order. Unreadable files never stop the others.
        """
        from .batch import score_files  # DataLoader machinery only when files are scored in bulk
        yield from score_files(self, paths, batch_size or self.batch_size, workers, progress)

    def extra_repr(self) -> str:
        return (f"name={self.metric_name}, precision={self.precision}, crops={self.crop_spec}, "
                f"as_loss={self.as_loss}, device={self.device}")


def create_metric(name: str, as_loss: bool = False, device: Optional[Union[str, torch.device]] = None,
                  *, backbone: Optional[PathLike] = None,
                  pretrained_model_path: Optional[PathLike] = None, precision: str = "fp32",
                  crops: str = "random10", num_crops: int = 10, crop_seed: int = 0,
                  max_side: Optional[int] = DEFAULT_MAX_SIDE, batch_size: Optional[int] = None,
                  loss_weight: float = 1.0, loss_reduction: str = "mean",
                  **unknown: Any) -> InferenceMetric:
    """Build the metric ``name`` (see ``list_models()``) ready to score.

    Args:
        name: a model card name, e.g. 'uniqa' (zero-shot) or 'uniqa-koniq' (trained adapter).
        as_loss: keep gradients: the output is a differentiable loss (higher score = better image).
        device: 'cpu', 'cuda', ...; default CUDA when available.
        backbone: path of UniQA_weight.pt, or 'random'/'random-tiny' (untrained; demos and tests);
            default: looked up in $PYIQA_WEIGHTS_DIR, then $TORCH_HOME/hub/pyiqa.
        pretrained_model_path: the trained adapter checkpoint of an adapter card (same lookup). The
            model is rebuilt from the options the checkpoint stores (e.g. its ``sample_size``); the
            card fills only what it lacks. Its prompts and use_adapter must be the card's.
        precision: 'fp32', 'bf16' (frozen weights converted, no autocast), 'fp16' (CUDA only) or
            'auto' (bf16 where the hardware makes it fast, else fp32).
        crops: test-crop protocol, one of TEST_CROPS; default the release's 10 crops, drawn from a
            generator seeded per image (``crop_seed``) so a score depends only on the image.
        num_crops: crops per image for 'random10', 'random10-global' and 'grid'.
        max_side: longer image side bound; larger images are downscaled first (None: no bound).
        batch_size: images per forward pass (default 4 on CPU, 32 on CUDA).
        loss_weight, loss_reduction: scaling and reduction ('mean', 'sum', 'none') with as_loss.

    Raises:
        ConfigError: unknown name or option. CheckpointError: missing or unfit weight files.
    """
    if unknown:
        known = [k for k in inspect.signature(create_metric).parameters if k != "unknown"]
        key = next(iter(unknown))
        raise ConfigError(f"create_metric got an unknown option '{key}'.{closest(key, known)} "
                          f"Valid options: {', '.join(known)}")
    card = get_card(name)
    _check_options(crops, num_crops, loss_reduction, max_side, batch_size)
    dev = torch.device(device) if device is not None else torch.device(
        "cuda" if torch.cuda.is_available() else "cpu")
    precision = resolve_precision(precision, dev, where="precision")

    backbone_path, adapter_path = _resolve_files(card, backbone, pretrained_model_path)
    adapter = weights.read_adapter_checkpoint(adapter_path, card) if adapter_path else None

    # the adapter's own stored options (e.g. its sample_size) rebuild its model; the card fills gaps
    options = dict(weights.model_options(card, adapter), test_crop=crops, num_crops=num_crops,
                   crop_seed=crop_seed)
    try:
        net = UniQA(backbone=backbone_path, backbone_dtype=precision, **options)
    except CheckpointError as err:
        raise CheckpointError(f"Backbone of '{name}' ({backbone_path}): {err}") from err
    except ConfigError as err:
        if adapter is None:
            raise
        raise CheckpointError(f"Adapter '{adapter_path}' of '{name}' stores model options UniQA "
                              f"rejects: {err}") from err
    if adapter is not None:
        try:
            net.load_trainable_state_dict(adapter.params, strict=True)
        except CheckpointError as err:
            raise CheckpointError(f"Adapter '{adapter_path}' of '{name}': {err}") from err
    net.drop_text_tower()  # prompt embeddings are cached; scoring never needs the text tower again
    net.requires_grad_(False)
    net.eval().to(dev)
    logger.info("Created metric '%s' on %s (%s): backbone %s%s", name, dev, precision, backbone_path,
                f", adapter {adapter_path}" if adapter_path else "")
    return InferenceMetric(net, card, precision, as_loss=as_loss, loss_weight=loss_weight,
                           loss_reduction=loss_reduction, max_side=max_side, batch_size=batch_size,
                           weight_files={"backbone": backbone_path,
                                         "adapter": str(adapter_path) if adapter_path else None})


def _resolve_files(card: ModelCard, backbone: Optional[PathLike],
                   adapter: Optional[PathLike]) -> Tuple[str, Optional[Path]]:
    """Both weight files of ``card``; when several are missing, one error tells about all of them."""
    found, problems = [], []
    for resolve, explicit in ((weights.resolve_backbone, backbone), (weights.resolve_adapter, adapter)):
        try:
            found.append(resolve(card, explicit))
        except CheckpointError as err:
            problems.append(str(err))
    if problems:
        raise CheckpointError("\n\n".join(problems))
    return found[0], found[1]


def _check_options(crops: str, num_crops: int, loss_reduction: str, max_side: Optional[int],
                   batch_size: Optional[int]) -> None:
    if crops not in TEST_CROPS:
        raise ConfigError(f"Unknown crops '{crops}'.{closest(crops, TEST_CROPS)} Valid: "
                          f"{list(TEST_CROPS)}")
    if loss_reduction not in LOSS_REDUCTIONS:
        raise ConfigError(f"loss_reduction must be one of {list(LOSS_REDUCTIONS)}, got '{loss_reduction}'")
    for key, value in (("num_crops", num_crops), ("max_side", max_side), ("batch_size", batch_size)):
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ConfigError(f"'{key}' must be a positive integer, got {value!r}")
