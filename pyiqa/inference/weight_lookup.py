"""Where weight files are looked for, without importing torch.

``pyiqa --list`` shows which weight files are present; importing torch only to learn its hub folder
would cost seconds, so the folder is computed here by torch's documented rule
(``$TORCH_HOME/hub``, ``$TORCH_HOME`` defaulting to ``$XDG_CACHE_HOME/torch``, that to ``~/.cache``).
Once torch is imported anyway, ``torch.hub.get_dir()`` is asked instead, so ``torch.hub.set_dir``
is honoured. ``pyiqa.inference.weights`` documents the lookup order.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional

ENV_VAR = "PYIQA_WEIGHTS_DIR"


def torch_hub_dir() -> Path:
    """torch's hub folder (``torch.hub.get_dir()``), computed without importing torch."""
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "hub"):
        return Path(torch.hub.get_dir())
    cache = os.getenv("XDG_CACHE_HOME", "~/.cache")
    return Path(os.path.expanduser(os.getenv("TORCH_HOME", os.path.join(cache, "torch")))) / "hub"


def weight_dirs() -> List[Path]:
    """The directories searched for weight files, in order: ``$PYIQA_WEIGHTS_DIR``, then
    ``$TORCH_HOME/hub/pyiqa``."""
    dirs = [Path(p).expanduser() for p in os.environ.get(ENV_VAR, "").split(os.pathsep) if p]
    dirs.append(torch_hub_dir() / "pyiqa")
    return dirs


def find_weight(file_name: str) -> Optional[Path]:
    """The first ``dir/file_name`` that exists among ``weight_dirs()``, else None."""
    for d in weight_dirs():
        if (d / file_name).is_file():
            return d / file_name
    return None
