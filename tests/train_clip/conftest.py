"""Fixtures of the train_clip tests: a small learnable image-caption set written by the test."""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Dict

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))            # clip_helpers
sys.path.insert(0, str(HERE.parents[1]))  # the repository: train_clip is an application, not installed


@pytest.fixture(scope="session")
def pairs(tmp_path_factory) -> Dict[str, Any]:
    from clip_helpers import write_pairs
    return write_pairs(tmp_path_factory.mktemp("pairs"))


@pytest.fixture(autouse=True)
def one_thread():
    """In-process tests run tiny models: one intra-op thread is fastest and immune to a loaded machine."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
