"""Fixtures of the inference API tests: tiny random backbones written to disk in the release's format,
an isolated weights lookup (never the user's real cache), real image files of every awkward kind."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))  # so the tests can `import inference_helpers`

from inference_helpers import smooth_image, write_backbone  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def one_thread():
    """Tiny models gain nothing from intra-op threads, and on a busy machine OpenMP threads waiting
    for each other make the suite several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def backbone_file(tmp_path_factory) -> Path:
    return write_backbone(tmp_path_factory.mktemp("backbone") / "UniQA_weight.pt", seed=2)


@pytest.fixture
def weights_env(tmp_path, monkeypatch):
    """PYIQA_WEIGHTS_DIR and TORCH_HOME pointed at empty temporary folders: (weights dir, hub dir)."""
    weights_dir, torch_home = tmp_path / "weights", tmp_path / "torch_home"
    weights_dir.mkdir()
    monkeypatch.setenv("PYIQA_WEIGHTS_DIR", str(weights_dir))
    monkeypatch.setenv("TORCH_HOME", str(torch_home))
    return weights_dir, torch_home / "hub" / "pyiqa"


@pytest.fixture(scope="session")
def image_dir(tmp_path_factory) -> Path:
    """Four RGB images of different sizes (JPEG and PNG)."""
    root = tmp_path_factory.mktemp("images")
    for k, (h, w) in enumerate([(384, 512), (300, 260), (240, 320), (500, 375)]):
        ext = "png" if k % 2 else "jpg"
        Image.fromarray(smooth_image(h, w, k)).save(root / f"img{k}.{ext}", quality=90)
    return root
