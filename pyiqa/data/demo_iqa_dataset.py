"""``type: DemoIQADataset``: the embedded demo data, built from scikit-image's photographs on first use,
so ``python train.py -opt options/train/UniQA/demo.yml`` runs on a fresh machine without a download."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from ..utils import dist
from ..utils.registry import DATASET_REGISTRY, check_kwargs
from .demo_dataset import build_demo_dataset
from .general_nr_dataset import GeneralNRDataset


@DATASET_REGISTRY.register()
class DemoIQADataset(GeneralNRDataset):
    """A GeneralNRDataset whose folder, meta CSV and split pickle are created when missing.

    Args:
        dataroot_target: demo root (built there if incomplete); ``meta_info_file``/``split_file``
            default to the files the builder writes. Other options as GeneralNRDataset.
    """

    def __init__(self, dataroot_target: str, meta_info_file: Optional[str] = None,
                 split_file: Optional[str] = None, **options: Any):
        check_kwargs(GeneralNRDataset.__init__, options, f"datasets.{options.get('phase', 'train')}")
        if dist.get_rank() == 0:
            info = build_demo_dataset(dataroot_target)
        dist.barrier()
        info = build_demo_dataset(dataroot_target) if dist.get_rank() != 0 else info
        super().__init__(dataroot_target=str(Path(dataroot_target)),
                         meta_info_file=meta_info_file or str(info["meta_info_file"]),
                         split_file=split_file or str(info["split_file"]), **options)
