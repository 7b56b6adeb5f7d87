"""Inference for users who never train: ``create_metric(name)`` builds a ready-to-score metric from a
model card (``pyiqa.archs.uniqa_arch.MODEL_CARDS``), finding its weight files locally."""
from .images import DEFAULT_MAX_SIDE, InputError, decode_image, list_images
from .metric import InferenceMetric, create_metric, get_card, list_models
from .weights import install_weights, weight_dirs

__all__ = ["DEFAULT_MAX_SIDE", "InferenceMetric", "InputError", "create_metric", "decode_image",
           "get_card", "install_weights", "list_images", "list_models", "weight_dirs"]
