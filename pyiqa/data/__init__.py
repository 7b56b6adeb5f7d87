"""Datasets, transforms and loaders. Importing this package registers every dataset class."""
from . import ava_dataset, demo_iqa_dataset, general_nr_dataset  # noqa: F401  (register the dataset classes)
from .builder import build_dataloader, build_dataset, collate_images, seed_worker
from .image_io import decode_image, to_tensor

__all__ = ["build_dataset", "build_dataloader", "collate_images", "seed_worker", "decode_image", "to_tensor"]
