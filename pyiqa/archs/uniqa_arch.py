"""UniQA (arXiv 2406.01069): a frozen CLIP ViT-B/16, a small residual adapter and five learnable score
levels. Variants of the authors' release (single cue, multi-cue, AIGC) are rows of ``VARIANTS``.

Score of one crop: f = CLIP image embedding, f' = f + adapter(f), p = softmax over the five prompts
of each group of exp(logit_scale) * cos(f', t), group score = sum_k p_k * s_k, score = mean over groups.

Split as timm splits its networks: ``forward_features`` runs the frozen tower (crops -> embeddings f),
``forward_head`` the :class:`~pyiqa.archs.score_head.ScoreHead` (embeddings -> scores), the only part
that trains. The training
loop feeds the head either live embeddings or stored ones (``train.feature_cache``); nothing downstream
of ``forward_features`` can tell which.
"""
from __future__ import annotations

import functools
import logging
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import open_clip
import torch
import torch.nn as nn
import torch.nn.functional as F

from ..inference.limits import check_num_crops
from ..utils.errors import CheckpointError, ConfigError
from ..utils.precision import weight_dtype
from ..utils.registry import ARCH_REGISTRY, closest
from .clip_backbone import build_clip, drop_text_tower
from .crops import TEST_CROPS, CropSpec, make_crops, to_unit_float
from .score_head import NUM_LEVELS, Adapter, ScoreHead
# The model cards (named inference configurations of this class) live in a torch-free module so
# that listing them is instant; re-exported here, next to the class they configure.
from .model_cards import (BACKBONE_DOWNLOAD_PAGES, BACKBONE_EMBED_DIM, BACKBONE_FILE,  # noqa: F401
                          MODEL_CARDS, ModelCard)

logger = logging.getLogger(__name__)

OPENAI_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
OPENAI_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)

# Five prompts per group (NUM_LEVELS), ordered low to high quality so they line up with the score levels.
PROMPT_GROUPS: Dict[str, Tuple[str, ...]] = {
    "quality": ("bad image", "poor image", "fair image", "good image", "perfect image"),
    "blur": ("extremely blurry image", "blurry image", "fair image", "sharp image",
             "extremely sharp image"),
    "noise": ("extremely noisy image", "noisy image", "fair image", "noise-free image",
              "extremely noise-free image"),
    "lowhigh": ("extremely low-quality image", "low-quality image", "fair image",
                "high-quality image", "extremely high-quality image"),
    "content": ("bad content", "poor content", "fair content", "good content", "perfect content"),
}


def check_prompt_groups(groups: Mapping[str, Sequence[str]], where: str = "PROMPT_GROUPS") -> None:
    """Every group must hold exactly NUM_LEVELS prompts: the logits are viewed as (N, G, NUM_LEVELS),
    so a group of another length would silently shift every later group onto the wrong levels."""
    for name, prompts in groups.items():
        count = 1 if isinstance(prompts, str) else len(prompts)
        if count != NUM_LEVELS:
            raise ConfigError(f"Prompt group '{name}' in {where} ({__name__}) holds {count} prompt(s); "
                              f"it needs exactly {NUM_LEVELS}, ordered low to high quality (one per "
                              f"score level): {prompts!r}")


check_prompt_groups(PROMPT_GROUPS)

# Class names of the authors' release -> constructor options, so their YAMLs build this class.
VARIANTS: Dict[str, Dict[str, Any]] = {
    "UniQA_Adapter_Patchtest": {"prompts": ["quality"]},
    "UniQA_Adapter_Patchtest_PromptEs": {"prompts": ["quality", "blur", "noise", "lowhigh"]},
    "UniQA_Adapter_Patchtest_PromptEs_AGIQA": {"prompts": ["quality", "content"]},
}

ImageBatch = Union[torch.Tensor, Sequence[torch.Tensor]]


@ARCH_REGISTRY.register()
class UniQA(nn.Module):
    """UniQA quality model: frozen CLIP + adapter + learnable levels.

    Args:
        backbone: path of UniQA_weight.pt (OpenAI-format CLIP state dict), 'random' or 'random-tiny'.
        prompts: names of PROMPT_GROUPS to ensemble (mean of the group scores).
        use_adapter: False gives the zero-shot model (f' = f).
        embedding_dim: hidden width of the adapter bottleneck (in/out width = CLIP embed dim);
            ``None`` = half the CLIP embed dim (256 for ViT-B/16, the release's value).
        learnable_levels: train the score levels (else a fixed buffer).
        score_levels: initial levels, low to high.
        sample_size: crop size fed to CLIP; the positional embedding is resized to it.
        pos_embedding: False only warns (the release silently dropped the embedding then).
        drop_pos_embedding: with pos_embedding=False, really zero the embedding as the release did.
        test_crop: eval-mode crops, one of TEST_CROPS.
        num_crops: crops per image for 'random10', 'random10-global' and 'grid'.
        crop_seed: seed of 'random10'.
        backbone_dtype: runtime option, not saved in ``arch_options`` (like the device): load the
            frozen image tower directly in this dtype ('fp32', 'bf16', 'fp16' or a torch.dtype) for
            inference, skipping the random init (see ``build_clip(visual_dtype=...)``). ``None``:
            float32, the training default.
        clip_model: runtime option, not saved in ``arch_options``: an already-built open_clip CLIP used
            as the backbone instead of loading ``backbone`` (which then only labels it), e.g. the
            model ``train_clip`` is pre-training, scored zero-shot without writing a file. It is
            frozen and put in eval mode like a loaded backbone: pass a copy to keep training it.
            ``sample_size`` must equal its input size.
        keep_text_tower: runtime option, not saved in ``arch_options``: False builds for scoring only
            (``create_metric``): the prompts are embedded by the text tower alone, which is freed
            before the image tower is loaded, so that peak memory is about the larger tower rather
            than both; ``refresh_text_features`` is then unavailable (see ``drop_text_tower``).
    """

    legacy_options = {
        "model_type": "the release's model tag; the architecture is always UniQA",
        "pretrained": "the CLIP always comes from `backbone`; nothing is downloaded",
        "clip_finetune": "the CLIP is always frozen; only adapter and score levels train",
    }

    def __init__(self, backbone: str = "random", prompts: Sequence[str] = ("quality",),
                 use_adapter: bool = True, embedding_dim: Optional[int] = None, learnable_levels: bool = True,
                 score_levels: Sequence[float] = (0.2, 0.4, 0.6, 0.8, 1.0), sample_size: int = 224,
                 pos_embedding: bool = True, drop_pos_embedding: bool = False,
                 test_crop: str = "random10", num_crops: int = 10, crop_seed: int = 0,
                 backbone_dtype: Optional[Union[str, torch.dtype]] = None,
                 clip_model: Optional[nn.Module] = None, keep_text_tower: bool = True):
        super().__init__()
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        self._check_options(prompts, score_levels, test_crop, num_crops, pos_embedding,
                            drop_pos_embedding)
        self._arch_options = dict(
            backbone=str(backbone), prompts=prompts, use_adapter=use_adapter,
            embedding_dim=embedding_dim, learnable_levels=learnable_levels,
            score_levels=[float(s) for s in score_levels], sample_size=sample_size,
            pos_embedding=pos_embedding, drop_pos_embedding=drop_pos_embedding,
            test_crop=test_crop, num_crops=num_crops, crop_seed=crop_seed)
        self.prompts = prompts
        self.sample_size = sample_size
        self.test_crop = test_crop
        self.num_crops = num_crops
        self.crop_seed = crop_seed

        texts = [p for group in prompts for p in PROMPT_GROUPS[group]]
        encoded: List[Tuple[torch.Tensor, torch.Tensor]] = []
        if clip_model is not None:
            self.clip = _check_clip_model(clip_model, sample_size)
        else:  # without keep_text_tower the prompts are embedded while the image tower is not loaded yet
            self.clip = build_clip(
                backbone, image_size=sample_size, visual_dtype=_as_dtype(backbone_dtype),
                encode_prompts=None if keep_text_tower else
                lambda clip: encoded.append(_encode_prompts(clip, _tokenize(texts, clip))))
        self.text_tower_dropped = bool(encoded)
        self.clip.requires_grad_(False)
        self.clip.eval()
        if not pos_embedding:
            self._handle_pos_embedding(drop_pos_embedding)

        dim = self.clip.visual.proj.shape[1]  # joint embedding width D (512 for ViT-B/16)
        hidden = int(embedding_dim) if embedding_dim else dim // 2
        self.head = ScoreHead(dim, hidden, use_adapter, score_levels, learnable_levels)
        self.register_buffer("mean", torch.tensor(OPENAI_CLIP_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(OPENAI_CLIP_STD).view(1, 3, 1, 1), persistent=False)

        self.register_buffer("prompt_tokens", _tokenize(texts, self.clip), persistent=False)
        if encoded:  # built without its text tower
            self.head.text_features, self.head.logit_scale = encoded[0]
        else:
            self.refresh_text_features()
            if not keep_text_tower:  # an in-memory clip_model
                self.drop_text_tower()

    @staticmethod
    def _check_options(prompts: List[str], score_levels: Sequence[float], test_crop: str,
                       num_crops: int, pos_embedding: bool, drop_pos_embedding: bool) -> None:
        if not prompts:
            raise ConfigError(f"'prompts' is empty; choose from {sorted(PROMPT_GROUPS)}")
        for group in prompts:
            if group not in PROMPT_GROUPS:
                raise ConfigError(f"Unknown prompt group '{group}'.{closest(group, PROMPT_GROUPS)} "
                                  f"Valid groups: {sorted(PROMPT_GROUPS)}")
        if len(score_levels) != NUM_LEVELS:
            raise ConfigError(f"'score_levels' needs {NUM_LEVELS} values (one per prompt), "
                              f"got {list(score_levels)}")
        if test_crop not in TEST_CROPS:
            raise ConfigError(f"Unknown test_crop '{test_crop}'.{closest(test_crop, TEST_CROPS)} "
                              f"Valid values: {list(TEST_CROPS)}")
        check_num_crops(num_crops)  # 10**8 crops would run for hours instead of failing
        if drop_pos_embedding and pos_embedding:
            raise ConfigError("'drop_pos_embedding: true' only applies with 'pos_embedding: false' "
                              "(it reproduces the release's dropped positional embedding).")

    def _handle_pos_embedding(self, drop: bool) -> None:
        if not drop:
            logger.warning(
                "pos_embedding=False: the authors' release silently dropped CLIP's positional "
                "embedding with this setting; it is KEPT here. Set drop_pos_embedding=True as well "
                "to reproduce the release exactly.")
            return
        logger.warning("drop_pos_embedding=True: zeroing CLIP's positional embedding to reproduce the "
                       "release (image features lose all spatial position information).")
        with torch.no_grad():
            self.clip.visual.positional_embedding.zero_()  # adding zeros == not adding it

    @property
    def embed_dim(self) -> int:
        """Width D of the joint embedding the adapter maps (512 for ViT-B/16)."""
        return int(self.clip.visual.proj.shape[1])

    @property
    def adapter(self) -> Optional[Adapter]:
        """The head's adapter (None in the zero-shot model)."""
        return self.head.adapter

    @property
    def score_level(self) -> torch.Tensor:
        """The head's five score levels, low to high."""
        return self.head.score_level

    @property
    def text_features(self) -> torch.Tensor:
        """The prompts' unit-norm text embeddings (G*5, D) the head compares images with."""
        return self.head.text_features

    @property
    def arch_options(self) -> Dict[str, Any]:
        """Constructor arguments; ``UniQA(**arch_options)`` rebuilds this model."""
        return {k: list(v) if isinstance(v, list) else v for k, v in self._arch_options.items()}

    @torch.no_grad()
    def refresh_text_features(self) -> None:
        """Give the head the prompts' embeddings by the frozen text tower and CLIP's logit scale; call
        again if the CLIP changes (the head keeps copies, so that it is a module of its own)."""
        if self.text_tower_dropped:
            raise RuntimeError("The text tower was dropped (drop_text_tower); the cached prompt "
                               "embeddings cannot be recomputed. Rebuild the model.")
        self.head.text_features, self.head.logit_scale = _encode_prompts(self.clip, self.prompt_tokens)

    def drop_text_tower(self) -> None:
        """Free the frozen text tower (~63M parameters) for inference.

        The scores only need the prompt embeddings, already cached in ``text_features``; afterwards
        ``clip.encode_text`` and ``refresh_text_features`` are unavailable.
        """
        drop_text_tower(self.clip)
        self.text_tower_dropped = True

    def train(self, mode: bool = True) -> "UniQA":
        """Switch adapter/levels; the frozen CLIP always stays in eval mode."""
        super().train(mode)
        self.clip.eval()
        return self

    # ------------------------------------------------------------------ scoring
    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The frozen tower's embeddings (N, D) float32 of crops ``x`` (N, 3, S, S) in [0, 1]: what the
        feature cache stores; nothing after this point depends on the image."""
        size = (self.sample_size,) * 2
        if not torch.is_tensor(x) or x.dim() != 4 or x.shape[1] != 3 or tuple(x.shape[-2:]) != size:
            shape = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
            raise ValueError(f"UniQA.forward_features expects crops (N, 3, {self.sample_size}, "
                             f"{self.sample_size}), got {shape}; in training mode crop in the data "
                             f"pipeline (eval mode takes whole images).")
        x = (x.float() - self.mean.float()) / self.std.float()
        return self.clip.encode_image(x.to(self.clip.visual.conv1.weight.dtype)).float()  # (N, D)

    def forward_head(self, f: torch.Tensor, counts: Optional[Sequence[int]] = None) -> torch.Tensor:
        """Scores (N, 1) of tower embeddings: (N, D) one crop per image, (N, T, D) the mean over an
        image's T crops, or (sum T_i, D) with ``counts`` T_i (see :class:`ScoreHead`)."""
        return self.head(f, counts)

    def test_crop_features(self, x: ImageBatch) -> Tuple[torch.Tensor, List[int]]:
        """Embeddings (sum T_i, D) of the test crops of images ``x`` (see ``forward``), and the T_i."""
        spec = self.crop_spec
        # A (B, 3, H, W) tensor is cut at one set of positions, as the release did per batch.
        return self._crop_features([c for batch in self._image_batches(x) for c in make_crops(batch, spec)])

    def _crop_features(self, crops: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, List[int]]:
        """Embeddings (sum K_i, D) of each image's crops (list of (K_i, 3, S, S)), in one forward pass."""
        if not crops:
            raise ValueError("score_crops got no images (an empty list of crops)")
        counts = [c.shape[0] for c in crops]
        if len({c.dtype for c in crops}) > 1:  # uint8 mixed with float: convert before concatenating
            crops = [to_unit_float(c) for c in crops]
        # Concatenate before converting: uint8 moves to the device 4x lighter.
        x = torch.cat([c.to(self.mean.device, non_blocking=True) for c in crops])  # (sum K_i, 3, S, S)
        return self.forward_features(to_unit_float(x)), counts

    def score_crops(self, crops: Sequence[torch.Tensor]) -> torch.Tensor:
        """Per-image scores from the test crops of each image (list of (K_i, 3, S, S)) -> (N,) float32.

        The one path from test crops to image scores (eval ``forward`` and the inference metric both
        end here): all crops go through the network in one forward pass; an image's score is the mean
        of its crops' scores. uint8 crops (0-255) are converted to [0, 1] floats on the device.
        """
        return self.forward_head(*self._crop_features(crops))[:, 0]

    @property
    def crop_spec(self) -> CropSpec:
        """The test-crop protocol (read on each use, so changing ``test_crop`` etc. takes effect)."""
        return CropSpec(self.sample_size, self.test_crop, self.num_crops, self.crop_seed)

    def forward(self, x: ImageBatch) -> torch.Tensor:
        """Training: ``x`` are crops (N, 3, S, S). Eval: full images, a (N, 3, H, W) tensor or a list
        of (3, H, W) tensors of any sizes, scored by averaging test crops. Returns (N, 1).

        Always ``forward_head(forward_features(crops))``; the training loop calls the two halves itself
        (:mod:`pyiqa.models.embedding_feed`), so that it can feed the head stored embeddings instead.
        """
        if self.training:
            return self.forward_head(self.forward_features(x))
        return self.forward_head(*self.test_crop_features(x))

    @staticmethod
    def _image_batches(x: ImageBatch) -> List[torch.Tensor]:
        """The eval input as (B, 3, H, W) batches: the tensor itself, or one batch per list image."""
        if torch.is_tensor(x):
            if x.dim() != 4 or x.shape[1] != 3:
                raise ValueError(f"UniQA expects RGB images (N, 3, H, W), got {tuple(x.shape)}")
            return [x]
        batches = []
        for k, img in enumerate(x):
            if not torch.is_tensor(img) or img.dim() != 3 or img.shape[0] != 3:
                shape = tuple(img.shape) if torch.is_tensor(img) else type(img).__name__
                raise ValueError(f"Image {k} of the list must be (3, H, W), got {shape}")
            batches.append(img.unsqueeze(0))
        if not batches:
            raise ValueError("UniQA got an empty list of images")
        return batches

    # ------------------------------------------------------------------ checkpoints
    def trainable_state_dict(self) -> Dict[str, torch.Tensor]:
        """The tensors a checkpoint saves: adapter weights and score levels (never the frozen CLIP)."""
        sd: Dict[str, torch.Tensor] = {}
        if self.head.adapter is not None:
            sd.update({f"adapter.{k}": v.detach() for k, v in self.head.adapter.state_dict().items()})
        sd["score_level"] = self.head.score_level.detach()
        return sd

    def load_trainable_state_dict(self, state_dict: Dict[str, Any],
                                  strict: bool = True) -> Tuple[List[str], List[str]]:
        """Load adapter + levels from our dict or the release's ``{'params': {...}}``.

        Returns (missing, unexpected) keys (both empty when strict). Raises CheckpointError on any
        mismatch when strict, and on shape mismatches always.
        """
        if isinstance(state_dict, dict) and isinstance(state_dict.get("params"), dict):
            state_dict = state_dict["params"]
        sd = {}
        for key, value in state_dict.items():
            while key.startswith("module."):
                key = key[len("module."):]
            sd[key] = value
        own = self.trainable_state_dict()
        missing = sorted(set(own) - set(sd))
        unexpected = sorted(set(sd) - set(own))
        shapes = [f"{k}: checkpoint {tuple(sd[k].shape)} vs model {tuple(own[k].shape)}"
                  for k in own if k in sd and tuple(sd[k].shape) != tuple(own[k].shape)]
        if shapes or (strict and (missing or unexpected)):
            hint = (" (keys under 'clip.' suggest a full module state_dict; the frozen CLIP comes from "
                    "`backbone`, save trainable_state_dict() instead)"
                    if any(k.startswith("clip.") for k in unexpected) else "")
            raise CheckpointError(
                f"UniQA trainable weights do not fit this model (prompts={self.prompts}, "
                f"adapter={'on' if self.adapter is not None else 'off'}): missing keys {missing}, "
                f"unexpected keys {unexpected[:10]}{'...' if len(unexpected) > 10 else ''}, "
                f"shape mismatches {shapes}{hint}")
        with torch.no_grad():
            for key in own:
                if key in sd:
                    own[key].copy_(torch.as_tensor(sd[key]).to(own[key]))
        return missing, unexpected


def _check_clip_model(clip_model: Any, sample_size: int) -> nn.Module:
    """An in-memory CLIP given as ``clip_model``: must be a module whose input size is ``sample_size``."""
    if not isinstance(clip_model, nn.Module) or not hasattr(clip_model, "encode_image"):
        raise ConfigError(f"'clip_model' must be an open_clip CLIP module (Python use only), got "
                          f"{type(clip_model).__name__}; in a YAML use 'backbone' instead")
    size = getattr(getattr(clip_model, "visual", None), "image_size", None)
    size = size[0] if isinstance(size, (tuple, list)) else size
    if size is not None and int(size) != int(sample_size):
        raise ConfigError(f"sample_size={sample_size} differs from the input size {size} of the given "
                          f"clip_model; pass sample_size={size}")
    return clip_model


def _tokenize(texts: Sequence[str], clip: nn.Module) -> torch.Tensor:
    """Token ids (len(texts), context_length) of the prompts for ``clip``'s text tower."""
    return open_clip.tokenize(list(texts), context_length=clip.context_length)


@torch.no_grad()
def _encode_prompts(clip: nn.Module, tokens: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """What the head keeps of the frozen CLIP: unit-norm prompt embeddings (G*5, D) float32 and the
    logit scale (a float32 scalar, a copy)."""
    feats = clip.encode_text(tokens)  # (G*5, D)
    return F.normalize(feats.float(), dim=-1), clip.logit_scale.detach().float().clone()


def _as_dtype(dtype: Optional[Union[str, torch.dtype]]) -> Optional[torch.dtype]:
    """A resolved precision name ('fp32' / 'bf16' / 'fp16'), a torch.dtype or None -> torch.dtype or None."""
    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    return weight_dtype(dtype)


def _register_variants() -> None:
    """Register the release's class names as UniQA with their prompt groups preset."""
    for name, options in VARIANTS.items():
        variant = functools.partial(UniQA, **options)
        variant.legacy_options = UniQA.legacy_options
        variant.__module__ = __name__
        variant.__doc__ = f"UniQA with {options} (class name of the authors' release)."
        ARCH_REGISTRY.register(variant, name=name)


_register_variants()

