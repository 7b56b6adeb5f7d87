"""pyiqa-uniqa: train, evaluate and deploy UniQA (arXiv 2406.01069) for image quality and aesthetics.

Scoring without training::

    import pyiqa
    metric = pyiqa.create_metric('uniqa')      # see pyiqa.list_models()
    score = metric('photo.jpg')                 # tensor([0.71...]), higher is better

``import pyiqa`` stays light: the inference API (torch, open_clip) is imported on first use.
"""
from ._foreign import refuse_foreign_pyiqa
from .version import __version__

refuse_foreign_pyiqa()  # before anything of a possibly half-overwritten package runs

__all__ = ["__version__", "create_metric", "list_models"]

_LAZY = {"create_metric": "pyiqa.inference", "list_models": "pyiqa.inference"}


def __getattr__(name: str) -> "object":
    if name in _LAZY:
        import importlib
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pyiqa' has no attribute '{name}'")


def __dir__() -> "list[str]":
    return sorted(list(globals()) + list(_LAZY))
