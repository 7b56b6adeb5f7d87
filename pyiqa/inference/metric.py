"""``create_metric(name)``: a ready-to-score UniQA module built from a model card.

The returned ``InferenceMetric`` takes paths, PIL images, numpy arrays or tensors and returns one
float score per image (higher = better). Crops of a batch of images go through the frozen CLIP in one
forward pass; the prompt embeddings are computed once, by the text tower alone, which is freed before
the image tower is loaded (the peak memory of a build is about one tower, not both).
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
from ..utils.devices import resolve_device
from ..utils.errors import CheckpointError, ConfigError
from ..utils.precision import resolve_precision
from ..utils.registry import closest
from . import weights
from .images import DEFAULT_MAX_SIDE, InputError, chunks, load_item, split_inputs
from .limits import check_num_crops

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]
LOSS_REDUCTIONS = ("mean", "sum", "none")
# Model options that change what an adapter's weights mean: load_weights refuses a file trained with
# other values (the rest are either runtime choices or shapes that load_trainable_state_dict checks).
STRUCTURAL_OPTIONS = ("prompts", "use_adapter", "learnable_levels", "sample_size", "pos_embedding",
                      "drop_pos_embedding")
# Images per forward pass (x 10 crops each). On the CPU the activations of a ViT-B/16 forward take
# ~100 MB per image in bf16 (more with the allocator's slack): 2 keeps scoring a folder within ~+600 MB
# of the imports in bf16 (scripts/benchmark_memory.py; 4 reached +710 MB) at the same speed per image.
DEFAULT_BATCH = {"cpu": 2, "cuda": 32}


def get_card(name: str) -> ModelCard:
    """The model card of ``name``; an unknown name lists the close matches and all names."""
    if name not in MODEL_CARDS:
        close = difflib.get_close_matches(str(name), list(MODEL_CARDS), n=3, cutoff=0.5)
        hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise ConfigError(f"Unknown metric '{name}'.{hint} Available: {', '.join(list_models())}")
    return MODEL_CARDS[name]


class InferenceMetric(nn.Module):
    """A no-reference quality metric: ``metric(images) -> (N,)`` float scores, higher is better.

    Build it with ``pyiqa.create_metric``. It keeps IQA-PyTorch's ``InferenceModel`` contract:
    ``metric(target, ref=None)`` (a no-reference card ignores ``ref``), ``load_weights(path,
    weight_keys='params')`` and the attributes ``metric_name``, ``metric_mode`` ('NR', the card's),
    ``lower_better``, ``score_range``, ``as_loss``, ``loss_weight``, ``loss_reduction``,
    ``check_input_range``, ``seed``, ``net`` and ``device``; plus ``precision``, ``weights`` (the files
    used) and ``card``.
    """

    metric_mode = "NR"  # every UniQA card is no-reference; set from the card in __init__

    def __init__(self, net: UniQA, card: ModelCard, precision: str, as_loss: bool = False,
                 loss_weight: float = 1.0, loss_reduction: str = "mean",
                 max_side: Optional[int] = DEFAULT_MAX_SIDE, batch_size: Optional[int] = None,
                 weight_files: Optional[dict] = None, check_input_range: bool = True):
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
        # as in IQA-PyTorch, a loss never checks the value range (optimisers leave [0, 1] freely)
        self.check_input_range = bool(check_input_range) and not as_loss
        self.max_side = max_side
        self._batch_size = batch_size
        self.weights = dict(weight_files or {})

    @property
    def device(self) -> torch.device:
        return self.net.mean.device

    @property
    def seed(self) -> int:
        """Seed of the per-image crop generator (IQA-PyTorch's ``seed`` keyword)."""
        return self.net.crop_seed

    @property
    def crop_spec(self) -> CropSpec:
        """The network's test-crop protocol (what the decoding workers of ``score_files`` cut)."""
        return self.net.crop_spec

    @property
    def batch_size(self) -> int:
        """Images per forward pass (their crops are batched together)."""
        return self._batch_size or DEFAULT_BATCH.get(self.device.type, DEFAULT_BATCH["cpu"])

    def train(self, mode: bool = True) -> "InferenceMetric":
        """The network always stays in eval mode: a metric scores with its test crops."""
        super().train(mode)
        self.net.eval()
        return self

    def forward(self, target: Any, ref: Any = None, **kwargs: Any) -> torch.Tensor:
        """Score images.

        Args:
            target: a path (str/Path), a PIL image, a numpy HxWx3 uint8 array, a tensor (N, 3, H, W),
                (N, 1, H, W), (3, H, W) or (1, H, W) in [0, 1], or a list mixing these with any sizes.
            ref: a reference image: UniQA is no-reference, so it is ignored (as IQA-PyTorch's
                no-reference metrics do), whatever its size.

        Returns:
            (N,) float32 scores on ``self.device``, one per image in input order. With
            ``as_loss=True``: ``loss_weight`` times their mean (``loss_reduction``), differentiable
            w.r.t. tensor inputs.

        Raises:
            InputError: a forward option UniQA does not take, or an image of the wrong type, shape or
                (with ``check_input_range``) value range.
        """
        if kwargs:
            raise InputError(f"'{self.metric_name}' takes no forward options; got "
                             f"{', '.join(sorted(kwargs))}. Crops, precision and the like are "
                             "create_metric options.")
        if ref is not None and self.metric_mode != "NR":  # no FR card exists; kept for the contract
            raise InputError(f"'{self.metric_name}' is a {self.metric_mode} metric; this build scores "
                             "no-reference metrics only.")
        items = split_inputs(target)
        if not items:
            raise InputError("No images to score (empty list).")
        with torch.set_grad_enabled(self.as_loss):
            scores = torch.cat([
                self.net.score_crops([make_crops(load_item(item, self.max_side, self.check_input_range),
                                                 self.crop_spec)
                                      for item in chunk])
                for chunk in chunks(items, self.batch_size)])
        if not self.as_loss:
            return scores
        if self.loss_reduction == "mean":
            scores = scores.mean()
        elif self.loss_reduction == "sum":
            scores = scores.sum()
        return self.loss_weight * scores

    def load_weights(self, weights_path: PathLike, weight_keys: Optional[str] = "params") -> None:
        """Load a trained adapter into this adapter card (IQA-PyTorch's ``load_weights``).

        Accepts the release's ``{'params': {...}}`` files and our training checkpoints (``weight_keys``
        names the entry holding the tensors; None: the file is the tensors). The file must fit this
        card's model: its prompts and adapter, and the options it stores (sample size, positional
        embedding) must be the ones this metric was built with; otherwise build the metric from the
        file with ``create_metric(name, pretrained_model_path=...)``, which rebuilds the model. Files
        are read with ``torch.load(weights_only=True)``: nothing in them runs.

        Raises:
            CheckpointError: a zero-shot card (its only weights are the backbone), an unreadable or
                refused file, or one that does not fit this card's adapter.
        """
        if self.card.adapter_file is None:
            adapters = ", ".join(n for n in list_models() if MODEL_CARDS[n].adapter_file)
            raise CheckpointError(
                f"'{self.metric_name}' is zero-shot: it has no trained weights to load. Its only "
                f"weights are the backbone ({self.card.backbone_file}), chosen when the metric is "
                f"built: create_metric('{self.metric_name}', backbone='path/{self.card.backbone_file}'). "
                f"load_weights takes a trained adapter, on an adapter card ({adapters}).")
        path = Path(weights_path).expanduser()
        checkpoint = weights.read_adapter_checkpoint(path, self.card, embed_dim=self.net.embed_dim,
                                                     weight_key=weight_keys)
        stored = weights.model_options(self.card, checkpoint)
        differ = {k: (v, self.net.arch_options.get(k)) for k, v in stored.items()
                  if k in STRUCTURAL_OPTIONS and v != self.net.arch_options.get(k)}
        if differ:
            detail = ", ".join(f"{k}: file {a!r} vs metric {b!r}" for k, (a, b) in sorted(differ.items()))
            raise CheckpointError(
                f"Adapter '{path}' was trained on another model than this metric's ({detail}); build "
                f"the metric from it instead: create_metric('{self.metric_name}', "
                f"pretrained_model_path='{path}').")
        try:
            self.net.load_trainable_state_dict(checkpoint.params, strict=True)
        except CheckpointError as err:
            raise CheckpointError(f"Adapter '{path}' of '{self.metric_name}': {err}") from err
        self.weights["adapter"] = str(path)
        logger.info("Loaded adapter weights '%s' into '%s'", path, self.metric_name)

    def score_files(self, paths: Sequence[PathLike], batch_size: Optional[int] = None,
                    workers: int = 0, progress: bool = False) -> Iterator[Tuple[Path, Optional[float],
                                                                              Optional[str]]]:
        """Score image files, decoding them in ``workers`` processes while the network runs.

        Yields ``(path, score, None)``, or ``(path, None, reason)`` for a file that cannot be read, in
        input order. Unreadable files never stop the others.
        """
        from .batch import score_files  # DataLoader machinery only when files are scored in bulk
        for path, row, reason in score_files([self], paths, batch_size or self.batch_size, workers,
                                             progress):
            yield path, (row[0] if row is not None else None), reason

    def extra_repr(self) -> str:
        return (f"name={self.metric_name}, precision={self.precision}, crops={self.crop_spec}, "
                f"as_loss={self.as_loss}, device={self.device}")


def create_metric(name: str, as_loss: bool = False, device: Optional[Union[str, torch.device]] = None,
                  *, backbone: Optional[PathLike] = None,
                  pretrained_model_path: Optional[PathLike] = None, precision: str = "fp32",
                  crops: str = "random10", num_crops: int = 10, crop_seed: Optional[int] = None,
                  seed: Optional[int] = None, check_input_range: bool = True,
                  metric_mode: Optional[str] = None,
                  max_side: Optional[int] = DEFAULT_MAX_SIDE, batch_size: Optional[int] = None,
                  loss_weight: Optional[float] = 1.0, loss_reduction: str = "mean",
                  **unknown: Any) -> InferenceMetric:
    """Build the metric ``name`` (see ``list_models()``) ready to score.

    Takes IQA-PyTorch's ``create_metric`` keywords (``as_loss``, ``device``, ``seed``,
    ``check_input_range``, ``loss_weight``, ``loss_reduction``, ``metric_mode``,
    ``pretrained_model_path``) and UniQA's own.

    Args:
        name: a model card name, e.g. 'uniqa' (zero-shot) or 'uniqa-koniq' (trained adapter).
        as_loss: keep gradients: the output is a differentiable loss (higher score = better image);
            the input range is then not checked (as in IQA-PyTorch).
        device: 'cpu', 'cuda', 'cuda:N' (or a torch.device); default CUDA when available. A device
            this machine lacks is a ConfigError here, not a failure later.
        backbone: path of UniQA_weight.pt, or 'random'/'random-tiny' (untrained; demos and tests);
            default: looked up in $PYIQA_WEIGHTS_DIR, then $TORCH_HOME/hub/pyiqa.
        pretrained_model_path: the trained adapter checkpoint of an adapter card (same lookup). The
            model is rebuilt from the options the checkpoint stores (e.g. its ``sample_size``); the
            card fills only what it lacks. Its prompts and use_adapter must be the card's.
        precision: 'fp32', 'bf16' (frozen weights converted, no autocast), 'fp16' (CUDA only) or
            'auto' (bf16 where the hardware makes it fast, else fp32).
        crops: test-crop protocol, one of TEST_CROPS; default the release's 10 crops, drawn from a
            generator seeded per image so a score depends only on the image.
        num_crops: crops per image for 'random10', 'random10-global' and 'grid' (1 to 1000,
            limits.MAX_NUM_CROPS).
        crop_seed, seed: the seed of that per-image generator (default 0); ``seed`` is IQA-PyTorch's
            name for it. 'random10-global' draws from torch's global RNG instead.
        check_input_range: refuse float tensors outside [0, 1] (always off with ``as_loss``).
        metric_mode: accepted for IQA-PyTorch's callers; must be the card's ('NR').
        max_side: longer image side bound; larger images are downscaled first (None: no bound).
        batch_size: images per forward pass (default 2 on CPU, 32 on CUDA: ``DEFAULT_BATCH``).
        loss_weight, loss_reduction: scaling (None: 1) and reduction ('mean', 'sum', 'none') with
            as_loss.

    Raises:
        ConfigError: unknown name or option. CheckpointError: missing or unfit weight files.
    """
    if unknown:
        known = [k for k in inspect.signature(create_metric).parameters if k != "unknown"]
        key = next(iter(unknown))
        raise ConfigError(f"create_metric got an unknown option '{key}'.{closest(key, known)} "
                          f"Valid options: {', '.join(known)}")
    card = get_card(name)
    crop_seed = _crop_seed(crop_seed, seed)
    loss_weight = 1.0 if loss_weight is None else loss_weight
    _check_options(card, crops, num_crops, loss_reduction, max_side, batch_size, metric_mode,
                   loss_weight)
    dev = resolve_device(device, "device")
    precision = resolve_precision(precision, dev, where="precision")

    backbone_path, adapter_path = _resolve_files(card, backbone, pretrained_model_path)
    adapter = weights.read_adapter_checkpoint(adapter_path, card) if adapter_path else None

    # the adapter's own stored options (e.g. its sample_size) rebuild its model; the card fills gaps
    # keep_text_tower=False: the prompts are embedded by the text tower alone, freed before the
    # image tower is loaded (peak memory about one tower, not both); scoring never needs it again
    options = dict(weights.model_options(card, adapter), test_crop=crops, num_crops=num_crops,
                   crop_seed=crop_seed, keep_text_tower=False)
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
    net.requires_grad_(False)
    net.eval().to(dev)
    logger.info("Created metric '%s' on %s (%s): backbone %s%s", name, dev, precision, backbone_path,
                f", adapter {adapter_path}" if adapter_path else "")
    return InferenceMetric(net, card, precision, as_loss=as_loss, loss_weight=loss_weight,
                           loss_reduction=loss_reduction, max_side=max_side, batch_size=batch_size,
                           weight_files={"backbone": backbone_path,
                                         "adapter": str(adapter_path) if adapter_path else None},
                           check_input_range=check_input_range)


def _crop_seed(crop_seed: Optional[int], seed: Optional[int]) -> int:
    """``crop_seed`` or its IQA-PyTorch name ``seed`` (default 0); both given must agree."""
    if crop_seed is not None and seed is not None and crop_seed != seed:
        raise ConfigError(f"create_metric got seed={seed!r} and crop_seed={crop_seed!r}: they are the "
                          "same option (the crop generator's seed); give one.")
    value = crop_seed if crop_seed is not None else seed if seed is not None else 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"'seed' must be a non-negative integer, got {value!r}")
    return value


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


def _check_options(card: ModelCard, crops: str, num_crops: int, loss_reduction: str,
                   max_side: Optional[int], batch_size: Optional[int], metric_mode: Optional[str],
                   loss_weight: Any) -> None:
    if crops not in TEST_CROPS:
        raise ConfigError(f"Unknown crops '{crops}'.{closest(crops, TEST_CROPS)} Valid: "
                          f"{list(TEST_CROPS)}")
    if loss_reduction not in LOSS_REDUCTIONS:
        raise ConfigError(f"loss_reduction must be one of {list(LOSS_REDUCTIONS)}, got '{loss_reduction}'")
    if isinstance(loss_weight, bool) or not isinstance(loss_weight, (int, float)):
        raise ConfigError(f"loss_weight must be a number, got {loss_weight!r}")
    if metric_mode is not None and metric_mode != card.metric_mode:
        raise ConfigError(f"'{card.name}' is a {card.metric_mode} (no-reference) metric; got "
                          f"metric_mode={metric_mode!r}.")
    check_num_crops(num_crops)  # bounded: 10**8 crops per image would run for hours, not fail
    for key, value in (("max_side", max_side), ("batch_size", batch_size)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"'{key}' must be a positive integer, got {value!r}")
