"""Shared fixtures: the demo dataset and a tiny OpenAI-format CLIP file, each built once per session."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # so test modules can `import helpers`


def pytest_configure(config):
    # CI runs every test; `pytest -m "not slow"` is the quick loop while editing (about 2 minutes)
    config.addinivalue_line("markers", "slow: trains or runs installed commands in subprocesses (seconds each)")


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> Dict[str, Any]:
    from pyiqa.data.demo_dataset import build_demo_dataset
    return build_demo_dataset(tmp_path_factory.mktemp("demo"))


@pytest.fixture(scope="session")
def tiny_backbone(tmp_path_factory) -> Path:
    """A tiny random CLIP saved like the released UniQA_weight.pt (OpenAI keys, fp16)."""
    from pyiqa.archs.clip_backbone import save_random_backbone
    path = tmp_path_factory.mktemp("weights") / "tiny_clip.pt"
    save_random_backbone(path, config="tiny", dtype=torch.float16, seed=0)
    return path


@pytest.fixture(autouse=True)
def _restore_logging():
    """Entry points called in-process (``main(argv)``) configure the ``pyiqa`` loggers for a terminal
    (own handlers, no propagation); undo that so later tests' ``caplog`` sees their records."""
    import logging
    yield
    for name in ("pyiqa", "train_clip"):
        lg = logging.getLogger(name)
        for handler in list(lg.handlers):
            lg.removeHandler(handler)
            handler.close()
        lg.propagate = True
        lg.setLevel(logging.NOTSET)
