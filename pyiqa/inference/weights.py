"""Finding, checking and installing the weight files of the model cards. Nothing is ever downloaded.

Lookup order for each file a card needs (the backbone ``UniQA_weight.pt``, and the adapter of the
trained cards):

1. an explicit path (``backbone=...`` / ``pretrained_model_path=...``; CLI ``--backbone`` /
   ``--adapter``), used as is: a missing file is an error, never a fallback;
2. each directory in ``$PYIQA_WEIGHTS_DIR`` (``os.pathsep``-separated);
3. ``$TORCH_HOME/hub/pyiqa`` (``torch.hub.get_dir()/pyiqa``, pyiqa's usual cache).

An adapter checkpoint written by the trainer stores the options of the model it trained
(``{'params', 'arch': {'type', **UniQA.arch_options}, ...}``): the model is rebuilt from them
(:func:`model_options`), the card filling only what the file lacks (the release's bare ``{'params'}``).
"""
from __future__ import annotations

import dataclasses
import inspect
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional, Union

import torch

from ..archs.uniqa_arch import (BACKBONE_DOWNLOAD_PAGES, BACKBONE_EMBED_DIM, NUM_LEVELS, VARIANTS,
                                ModelCard, UniQA)
from ..archs.clip_backbone import RANDOM_BACKBONES
from ..utils.checkpoint import atomic_write, load_checkpoint
from ..utils.errors import CheckpointError
from .weight_lookup import ENV_VAR, find_weight, weight_dirs  # noqa: F401  (weight_dirs: public here)

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]
ADAPTER_KEYS = ("adapter.fc.0.weight", "adapter.fc.2.weight", "score_level")
# UniQA options a checkpoint stores that are choices of the run using it, never taken from the file:
# the backbone file is the one resolved now; the test crops are create_metric's arguments; whether the
# text tower is kept is how the metric is built (scoring frees it).
RUNTIME_OPTIONS = ("backbone", "test_crop", "num_crops", "crop_seed", "keep_text_tower")


def _looked_in(file_name: str) -> str:
    lines = []
    if not os.environ.get(ENV_VAR):
        lines.append(f"  - ${ENV_VAR}: not set")
    lines += [f"  - {d / file_name}" for d in weight_dirs()]
    return "\n".join(lines)


def resolve_backbone(card: ModelCard, explicit: Optional[PathLike] = None) -> str:
    """Path of the card's backbone (or 'random'/'random-tiny' when asked for explicitly).

    Raises:
        CheckpointError: the explicit path does not exist, or no directory holds the file; the message
            names every place looked in, the expected file name and the download pages.
    """
    if explicit is not None:
        if str(explicit) in RANDOM_BACKBONES:
            return str(explicit)
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise CheckpointError(f"backbone='{explicit}' does not exist (expected the released "
                                  f"{card.backbone_file}, an OpenAI-format CLIP state dict).")
        return str(path)
    found = find_weight(card.backbone_file)
    if found is not None:
        return str(found)
    pages = "\n".join(f"  {site}: {url}" for site, url in BACKBONE_DOWNLOAD_PAGES)
    raise CheckpointError(
        f"'{card.name}' needs the UniQA backbone weights '{card.backbone_file}' (~300 MB), not found. "
        f"Looked in:\n{_looked_in(card.backbone_file)}\n"
        f"They cannot be downloaded automatically; download '{card.backbone_file}' from the authors' "
        f"pages:\n{pages}\n"
        f"then put it in one of the folders above (or set {ENV_VAR} to its folder), or pass "
        f"backbone='path/to/{card.backbone_file}' (CLI: --backbone). backbone='random' gives an "
        "UNTRAINED model for demos and tests.")


def resolve_adapter(card: ModelCard, explicit: Optional[PathLike] = None) -> Optional[Path]:
    """Path of the card's trained adapter; None for zero-shot cards.

    Raises:
        CheckpointError: an adapter path was given to a zero-shot card, or the file is missing; the
            message says how to train and install it.
    """
    if card.adapter_file is None:
        if explicit is not None:
            raise CheckpointError(
                f"'{card.name}' is zero-shot and takes no adapter (pretrained_model_path='{explicit}'); "
                "use an adapter card such as 'uniqa-koniq' with it.")
        return None
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise CheckpointError(f"pretrained_model_path='{explicit}' does not exist (expected the "
                                  f"trained adapter of '{card.name}').")
        return path
    found = find_weight(card.adapter_file)
    if found is not None:
        return found
    how = f"pyiqa-train -opt {card.train_config}"  # installed or in a clone (shipped_configs)
    raise CheckpointError(
        f"'{card.name}' needs its trained adapter '{card.adapter_file}', not found. Looked in:\n"
        f"{_looked_in(card.adapter_file)}\n"
        "The authors released no trained adapters; make it yourself:\n"
        f"  1. train it: {how}\n"
        f"  2. install it: pyiqa install-weights {card.name} experiments/<run name>/models/net_best.pth\n"
        f"or pass pretrained_model_path='path/to/net_best.pth' (CLI: --adapter). Zero-shot scoring "
        "needs no adapter: create_metric('uniqa').")


@dataclasses.dataclass(frozen=True)
class AdapterCheckpoint:
    """A checked adapter checkpoint.

    Attributes:
        path: the file.
        params: adapter weights and score levels (``UniQA.load_trainable_state_dict`` keys).
        arch: the model options it stores (``{'type', **UniQA.arch_options}``), ``{}`` for the
            release's bare ``{'params': {...}}`` files.
    """

    path: Path
    params: Dict[str, torch.Tensor]
    arch: Dict[str, Any]


def read_adapter_checkpoint(path: PathLike, card: ModelCard, embed_dim: Optional[int] = None,
                            weight_key: Optional[str] = "params") -> AdapterCheckpoint:
    """Read and check the adapter checkpoint of ``card`` (keys, shapes, declared options).

    Accepts our training checkpoints (``{'params': ..., 'arch': ...}``), the release's
    ``{'params': {...}}`` and bare dicts. ``embed_dim``: the expected CLIP embedding width, if known.
    ``weight_key``: the entry holding the tensors (IQA-PyTorch's ``weight_keys``; a bare dict of
    tensors needs none).

    Raises:
        CheckpointError: unreadable or refused file, wrong keys or shapes, or trained as another kind
            of model than the card declares (prompts, use_adapter).
    """
    path = Path(path)
    ckpt = load_checkpoint(path, "adapter checkpoint")
    arch = _arch_of(ckpt, path)
    _check_arch(arch, path, card)
    params = _params_of(_entry(ckpt, weight_key, path), path)
    _check_shapes(params, path, embed_dim)
    return AdapterCheckpoint(path, params, arch)


def model_options(card: ModelCard, checkpoint: Optional[AdapterCheckpoint] = None) -> Dict[str, Any]:
    """The UniQA options that rebuild ``checkpoint``'s model: its stored options first, then the ones
    its release class name implies, then the card's; the adapter's hidden width from its shapes.

    Runtime options (RUNTIME_OPTIONS) are left out: the caller passes them. Without a checkpoint:
    the card's options.

    Raises:
        CheckpointError: the stored options name an architecture other than UniQA, an option UniQA
            does not take, or a hidden width the tensors contradict.
    """
    options = dict(card.options)
    if checkpoint is None:
        return options
    arch = dict(checkpoint.arch)
    arch_type = arch.pop("type", card.arch)
    if arch_type != "UniQA" and _variant(arch_type) is None:
        raise CheckpointError(f"Adapter checkpoint '{checkpoint.path}' was written for the architecture "
                              f"'{arch_type}', not UniQA ({card.name} needs UniQA or one of "
                              f"{sorted(VARIANTS)}).")
    defaults = {k: p.default for k, p in inspect.signature(UniQA).parameters.items()}
    known = set(defaults) - {"backbone_dtype", "clip_model"}
    unknown = sorted(set(arch) - known)
    if unknown:
        raise CheckpointError(f"Adapter checkpoint '{checkpoint.path}' stores options {unknown} that this "
                              f"version's UniQA does not take (valid: {sorted(known)}); it was written "
                              "by another version of pyiqa-uniqa.")
    options.update(_variant(arch_type) or {})
    options.update({k: v for k, v in arch.items() if k not in RUNTIME_OPTIONS})
    hidden = adapter_hidden_width(checkpoint.params)
    stored = options.get("embedding_dim")
    if stored is not None and int(stored) != hidden:
        raise CheckpointError(f"Adapter checkpoint '{checkpoint.path}' stores embedding_dim={stored} but "
                              f"its adapter weights are {hidden} wide; the file is inconsistent.")
    options["embedding_dim"] = hidden
    from_file = {k: v for k, v in options.items()
                 if k in arch and v != card.options.get(k, defaults.get(k)) and k != "embedding_dim"}
    if from_file:
        logger.info("Adapter '%s' rebuilds its model with its stored options %s", checkpoint.path,
                    from_file)
    return options


def _variant(arch_type: Any) -> Optional[Dict[str, Any]]:
    """The preset options of a release class name (``VARIANTS``), None for any other value."""
    return VARIANTS.get(arch_type) if isinstance(arch_type, str) else None


def _arch_of(ckpt: Any, path: Path) -> Dict[str, Any]:
    """The stored model options of a checkpoint; {} when it carries none (the release's files)."""
    arch = ckpt.get("arch") if isinstance(ckpt, dict) else None
    if arch is None:
        return {}
    if not isinstance(arch, dict):
        raise CheckpointError(f"Adapter checkpoint '{path}': its 'arch' entry is a {type(arch).__name__}, "
                              "expected the model options {'type': ..., 'prompts': ..., ...}.")
    return dict(arch)


def _entry(ckpt: Any, key: Optional[str], path: Path) -> Any:
    """``ckpt[key]`` (a bare dict of tensors is its own entry); a missing key names the ones there."""
    if key is None or not isinstance(ckpt, dict) or key in ckpt:
        return ckpt[key] if key is not None and isinstance(ckpt, dict) else ckpt
    if ckpt and all(torch.is_tensor(v) for v in ckpt.values()):
        return ckpt
    raise CheckpointError(f"Adapter checkpoint '{path}' has no entry '{key}' (weight_keys); its entries: "
                          f"{sorted(map(str, ckpt))[:8]}.")


def _params_of(ckpt: Any, path: Path) -> Dict[str, torch.Tensor]:
    if isinstance(ckpt, dict) and isinstance(ckpt.get("params"), dict):
        ckpt = ckpt["params"]
    if not isinstance(ckpt, dict) or not all(torch.is_tensor(v) for v in ckpt.values()):
        found = list(ckpt)[:8] if isinstance(ckpt, dict) else type(ckpt).__name__
        raise CheckpointError(f"'{path}' is not an adapter checkpoint: expected {{'params': {{...}}}} "
                              f"with {list(ADAPTER_KEYS)} (found: {found}).")
    params = {}
    for key, value in ckpt.items():
        while key.startswith("module."):
            key = key[len("module."):]
        params[key] = value
    missing = [k for k in ADAPTER_KEYS if k not in params]
    unexpected = sorted(set(params) - set(ADAPTER_KEYS))
    if missing or unexpected:
        hint = (" Keys under 'clip.' mean a full model state_dict: save trainable_state_dict() instead."
                if any(k.startswith("clip.") for k in unexpected) else "")
        raise CheckpointError(f"Adapter checkpoint '{path}' does not fit a UniQA adapter: missing keys "
                              f"{missing}, unexpected keys {unexpected[:8]}.{hint}")
    return params


def _check_arch(arch: Dict[str, Any], path: Path, card: ModelCard) -> None:
    """A checkpoint's stored prompts and use_adapter (given, or implied by a release class name) must
    be the card's: otherwise it is another kind of model, whatever its shapes say."""
    stored = {**(_variant(arch.get("type")) or {}), **arch}
    prompts = stored.get("prompts")
    if prompts is not None:
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        if prompts != list(card.options["prompts"]):
            raise CheckpointError(
                f"Adapter '{path}' was trained with prompts {prompts}, but '{card.name}' scores with "
                f"{list(card.options['prompts'])}; train with the card's prompts (config "
                f"{card.train_config}) or pass both files explicitly to a matching card.")
    use_adapter = stored.get("use_adapter")
    if use_adapter is not None and bool(use_adapter) != bool(card.options["use_adapter"]):
        raise CheckpointError(
            f"'{path}' was written by a model with use_adapter={use_adapter}, but '{card.name}' declares "
            f"use_adapter={card.options['use_adapter']}"
            + (": it holds no trained adapter (it comes from a zero-shot model)." if not use_adapter
               else "."))


def _check_shapes(params: Dict[str, torch.Tensor], path: Path, embed_dim: Optional[int]) -> None:
    w1, w2, levels = (params[k] for k in ADAPTER_KEYS)
    problems = []
    if w1.dim() != 2 or w2.dim() != 2 or tuple(w2.shape) != tuple(w1.shape)[::-1]:
        problems.append(f"adapter weights {tuple(w1.shape)} and {tuple(w2.shape)} are not (H, D) and "
                        "(D, H)")
    elif embed_dim is not None and w1.shape[1] != embed_dim:
        problems.append(f"adapter width D={w1.shape[1]} but the backbone embeds in {embed_dim} "
                        "dimensions (another backbone?)")
    if tuple(levels.shape) != (NUM_LEVELS,):
        problems.append(f"score_level has shape {tuple(levels.shape)}, expected ({NUM_LEVELS},)")
    if problems:
        raise CheckpointError(f"Adapter checkpoint '{path}': {'; '.join(problems)}.")


def adapter_hidden_width(params: Dict[str, torch.Tensor]) -> int:
    """Bottleneck width H of an adapter (``embedding_dim`` of UniQA)."""
    return int(params["adapter.fc.0.weight"].shape[0])


def install_weights(card: ModelCard, checkpoint: PathLike,
                    weights_dir: Optional[PathLike] = None) -> Path:
    """Check ``checkpoint`` fits ``card``'s adapter and copy it atomically to the weights directory.

    The target is ``weights_dir`` if given, else the first writable of ``weight_dirs()``, under the
    card's file name (so ``create_metric(card.name)`` finds it).

    Raises:
        CheckpointError: the card is zero-shot, or the checkpoint does not fit its adapter (keys,
            shapes, or stored options the card or UniQA contradicts).
    """
    if card.adapter_file is None:
        raise CheckpointError(f"'{card.name}' is zero-shot: it has no trained weights to install. Put "
                              f"{card.backbone_file} in a weights folder instead.")
    src = Path(checkpoint).expanduser()
    if not src.is_file():
        raise CheckpointError(f"Checkpoint '{src}' does not exist.")
    # the same checks create_metric makes, so an installed file is one it can build
    model_options(card, read_adapter_checkpoint(src, card, embed_dim=BACKBONE_EMBED_DIM))
    target_dir = Path(weights_dir).expanduser() if weights_dir else _first_writable(weight_dirs())
    target = target_dir / card.adapter_file
    _atomic_copy(src, target)
    logger.info("Installed '%s' as %s", src, target)
    return target


def _first_writable(dirs: List[Path]) -> Path:
    for d in dirs:
        try:
            d.mkdir(parents=True, exist_ok=True)
        except OSError:
            continue
        if os.access(d, os.W_OK):
            return d
    raise CheckpointError(f"None of the weights folders is writable: {[str(d) for d in dirs]}; "
                          f"set {ENV_VAR} to a writable folder.")


def _atomic_copy(src: Path, dst: Path) -> None:
    """Copy with :func:`atomic_write`: readers never see half a file."""
    def copy(out) -> None:
        with open(src, "rb") as inp:
            shutil.copyfileobj(inp, out)
    atomic_write(dst, copy)
