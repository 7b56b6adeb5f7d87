"""Training logic: the model classes selected by ``model_type``."""
from .general_iqa_model import GeneralIQAModel

__all__ = ["GeneralIQAModel"]
