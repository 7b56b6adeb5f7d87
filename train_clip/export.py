"""Export the pre-trained CLIP as the plain OpenAI-format state dict that ``pyiqa`` loads as a backbone.

``experiments/<name>/uniqa_backbone.pt`` has the layout of OpenAI's files and of the released
UniQA_weight.pt (OpenAI keys, ``input_resolution``/``context_length``/``vocab_size`` integers), so the
adapter trainer's ``network.backbone`` and ``create_metric(..., backbone=...)`` read it unchanged. The
export is verified by loading it back through the core's loader and comparing embeddings.
"""
from __future__ import annotations

import argparse
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch
from open_clip.model import CLIP

from pyiqa.archs.clip_backbone import build_clip
from pyiqa.utils.checkpoint import atomic_save, save_to
from pyiqa.utils.entry import run_cli
from pyiqa.utils.errors import CheckpointError, ConfigError, OutputError
from pyiqa.utils.precision import DTYPES

logger = logging.getLogger(__name__)

# largest embedding difference accepted after a round trip, per stored dtype
TOLERANCE = {"fp32": 1e-4, "fp16": 5e-2, "bf16": 2e-1}


def openai_state_dict(model: CLIP, dtype: torch.dtype = torch.float32) -> Dict[str, Any]:
    """The model as OpenAI's CLIP files store it: tensors under OpenAI's keys + integer metadata."""
    sd: Dict[str, Any] = {k: (v.detach().to("cpu", dtype) if v.is_floating_point() else v.detach().cpu())
                          for k, v in model.state_dict().items()}
    sd.update(input_resolution=int(model.visual.image_size[0]), context_length=int(model.context_length),
              vocab_size=int(model.vocab_size))
    return sd


@torch.no_grad()
def max_feature_difference(model: CLIP, loaded: CLIP) -> float:
    """Largest |difference| of the image and text embeddings of two CLIPs on a fixed random input."""
    gen = torch.Generator().manual_seed(0)
    size = model.visual.image_size[0]
    device = next(model.parameters()).device
    image = torch.randn(2, 3, size, size, generator=gen).to(device)
    text = torch.randint(1, 1000, (2, model.context_length), generator=gen).to(device)
    was_training = model.training
    model.eval()
    loaded = loaded.to(device).eval()
    diff = max((model.encode_image(image) - loaded.encode_image(image)).abs().max().item(),
               (model.encode_text(text) - loaded.encode_text(text)).abs().max().item())
    model.train(was_training)
    return diff


def check_exportable(model: CLIP) -> None:
    """Round-trip the model through the core's backbone loader before training starts.

    A config UniQA cannot load (another head width, GELU, extra layers...) fails here, in seconds,
    instead of after the run.
    """
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "probe.pt"
        try:
            with open(path, "wb") as f:
                save_to(openai_state_dict(model), f, path)
        except OSError as err:
            raise OutputError(f"Cannot write the export probe {path} in the temporary folder: "
                              f"{err.strerror or err}; free space there (or set TMPDIR)") from err
        try:
            loaded = build_clip(path, image_size=model.visual.image_size[0])
        except CheckpointError as err:
            raise ConfigError(f"This model cannot be exported as a UniQA backbone: {err}") from err
    diff = max_feature_difference(model, loaded)
    if diff > TOLERANCE["fp32"]:
        raise ConfigError(f"This model cannot be exported as a UniQA backbone: the core's loader builds a "
                          f"different network from its weights (embeddings differ by {diff:.3g}); use an "
                          "OpenAI-layout config (head width 64, QuickGELU, no extra layers)")


def export_backbone(model: CLIP, path: Path, dtype: str = "fp32", verify: bool = True) -> Path:
    """Write ``model`` atomically as an OpenAI-format state dict; optionally verify it loads back.

    Raises:
        CheckpointError: the written file does not reproduce the model's embeddings.
    """
    try:
        atomic_save(openai_state_dict(model, DTYPES[dtype]), path)
    except OSError as err:
        raise OutputError(f"Cannot write the exported backbone {path}: {err.strerror or err}. Nothing was "
                          "overwritten; free space or fix the folder, then export the last training state "
                          "with python -m train_clip.export") from err
    if verify:
        loaded = build_clip(path, image_size=model.visual.image_size[0])
        diff = max_feature_difference(model, loaded)
        if diff > TOLERANCE[dtype]:
            raise CheckpointError(f"Exported backbone {path} does not reproduce the trained model "
                                  f"(embeddings differ by {diff:.3g})")
        logger.info("Exported backbone %s (%s); reloaded through pyiqa's loader, embeddings match to %.1e",
                    path, dtype, diff)
    else:
        logger.info("Exported backbone %s (%s)", path, dtype)
    return path


def export_state(state_path: Path, out: Path, dtype: str = "fp32") -> Path:
    """Export the model of an intermediate training state (``training_states/<step>.state``).

    The state's ``model`` entry already holds OpenAI-format keys; the file is written in the backbone
    layout and read back through the core's loader to check it.
    """
    from pyiqa.utils.checkpoint import load_checkpoint
    state = load_checkpoint(state_path, "training state")  # weights_only: a planted file cannot run code
    if not isinstance(state, dict) or not isinstance(state.get("model"), dict):
        raise CheckpointError(f"{state_path} is not a train_clip training state (no 'model' entry)")
    sd: Dict[str, Any] = {k: v.to(DTYPES[dtype]) if v.is_floating_point() else v for k, v in state["model"].items()}
    size = sd["visual.conv1.weight"].shape[-1] * round((sd["visual.positional_embedding"].shape[0] - 1) ** 0.5)
    sd.update(input_resolution=int(size), context_length=int(sd["positional_embedding"].shape[0]),
              vocab_size=int(sd["token_embedding.weight"].shape[0]))
    try:
        atomic_save(sd, out)
    except OSError as err:
        raise OutputError(f"Cannot write --out '{out}': {err.strerror or err}. Nothing was overwritten") from err
    build_clip(out, image_size=size)  # raises CheckpointError if the core cannot load it
    logger.info("Exported step %s of %s to %s (%s)", state.get("iter", state.get("step")), state_path, out, dtype)
    return out


def main(argv: Optional[List[str]] = None) -> None:
    """``python -m train_clip.export --state experiments/X/training_states/5000.state --out b.pt``"""
    parser = argparse.ArgumentParser(description="Export a train_clip training state as a UniQA backbone")
    parser.add_argument("--state", required=True, type=Path)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--dtype", default="fp32", choices=sorted(TOLERANCE))
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s: %(message)s")
    refuse_overwriting_input(args.out, args.state)
    if args.out.is_dir():
        raise ConfigError(f"--out '{args.out}' is a folder; give the file to write, e.g. "
                          f"--out {args.out / 'uniqa_backbone.pt'}")
    export_state(args.state, args.out, args.dtype)


def refuse_overwriting_input(out: Path, state: Path) -> None:
    """ConfigError when ``out`` is ``state`` (same path, or the same file through a link): the export
    would replace the training state, and the run could no longer resume. Checked before any write."""
    same = out.resolve() == state.resolve()
    if not same and out.exists() and state.exists():
        try:
            same = os.path.samefile(out, state)
        except OSError:
            same = False
    if same:
        raise ConfigError(f"--out '{out}' is the training state --state '{state}'; refusing to overwrite it "
                          "(the run could no longer resume): give another file, e.g. --out uniqa_backbone.pt")


if __name__ == "__main__":
    run_cli(main, logger_name="train_clip")  # a bad or refused file: one message, exit status 2
