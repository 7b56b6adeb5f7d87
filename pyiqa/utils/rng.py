"""Seeding and capture/restore of every RNG a training step touches, for bit-exact resumes.

The captured state is saved inside training states, which are read back with
``torch.load(weights_only=True)``; so it holds only tensors, ints, floats, strings and tuples, never a
NumPy array (numpy's MT19937 key is stored as an int64 tensor and turned back into uint32).
"""
from __future__ import annotations

import random
from typing import Any, Dict

import numpy as np
import torch


def set_random_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def get_rng_state() -> Dict[str, Any]:
    """The state of Python's, NumPy's legacy global and torch's (CPU, CUDA) generators."""
    state = {"python": random.getstate(), "numpy": _numpy_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Dict[str, Any]) -> None:
    """Restore :func:`get_rng_state`'s capture: later draws are bit-identical to the captured run's."""
    random.setstate(state["python"])
    _set_numpy_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _numpy_state() -> Dict[str, Any]:
    """``np.random.get_state()`` with its (624,) uint32 key array as an int64 tensor."""
    name, keys, pos, has_gauss, cached_gaussian = np.random.get_state()
    return {"bit_generator": str(name), "keys": torch.from_numpy(keys.astype(np.int64)),
            "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached_gaussian)}


def _set_numpy_state(state: Any) -> None:
    if not isinstance(state, dict):  # the tuple of np.random.get_state(), e.g. captured in memory
        np.random.set_state(state)
        return
    keys = state["keys"].numpy().astype(np.uint32)
    np.random.set_state((state["bit_generator"], keys, state["pos"], state["has_gauss"],
                         state["cached_gaussian"]))
