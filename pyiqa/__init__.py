"""pyiqa-uniqa: train, evaluate and deploy UniQA (arXiv 2406.01069) for image quality and aesthetics."""
from .version import __version__

__all__ = ["__version__"]
