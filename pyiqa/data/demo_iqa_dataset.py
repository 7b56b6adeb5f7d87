"""``type: DemoIQADataset``: the embedded demo data, built from scikit-image's photographs on first use,
so ``pyiqa-train -opt UniQA/demo`` runs on a fresh machine without a download."""
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
        dataroot_target: demo root (built there if incomplete); ``meta_info_file`` defaults to the CSV
            the builder writes, and so does ``split_file`` (its 80/20 train/test pickle) unless a
            ``split_ratio`` selects split columns instead: ``split_ratio: 712`` is the honest
            70/10/20 train/val/test variant. Other options as GeneralNRDataset.
    """

    def __init__(self, dataroot_target: str, meta_info_file: Optional[str] = None,
                 split_file: Optional[str] = None, **options: Any):
        check_kwargs(GeneralNRDataset.__init__, options, f"datasets.{options.get('phase', 'train')}")
        if dist.get_rank() == 0:
            info = build_demo_dataset(dataroot_target)
        dist.barrier()
        info = build_demo_dataset(dataroot_target) if dist.get_rank() != 0 else info
        if split_file is None and options.get("split_ratio") is None and options.get("split_column") is None:
            split_file = str(info["split_file"])
        options.setdefault("split_ratio", "802")
        super().__init__(dataroot_target=str(Path(dataroot_target)),
                         meta_info_file=meta_info_file or str(info["meta_info_file"]),
                         split_file=split_file, **options)
