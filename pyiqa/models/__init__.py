"""Training logic: the one model class (network, loss, optimiser, checkpoints) and the scoring loop."""
from .iqa_model import IQAModel

__all__ = ["IQAModel"]
