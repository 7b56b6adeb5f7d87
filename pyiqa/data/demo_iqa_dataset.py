"""``type: DemoIQADataset``: the embedded demo data, built from scikit-image's photographs on first use,
so ``pyiqa-train -opt UniQA/demo`` runs on a fresh machine without a download."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

from ..utils import dist
from ..utils.errors import ConfigError
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
                 split_file: Optional[str] = None, where: Optional[str] = None, **options: Any):
        where = where or f"datasets.{options.get('phase', 'train')}"
        check_kwargs(GeneralNRDataset.__init__, options, where)
        section = {**options, "dataroot_target": dataroot_target, "meta_info_file": meta_info_file,
                   "split_file": split_file}
        if dist.get_rank() == 0:  # builds the data when missing; the other ranks wait, then read it
            section = self.source_options(section, where)
        dist.barrier()
        if dist.get_rank() != 0:
            section = self.source_options(section, where)
        super().__init__(where=where, **section)

    @classmethod
    def source_options(cls, options: Dict[str, Any], where: str) -> Dict[str, Any]:
        """``options`` with the demo's built-in meta CSV, and its split pickle when no split_ratio or
        split_column selects split columns; the data is built first when missing (as on first use), so
        a fresh machine can plan demo splits before any training."""
        if options.get("dataroot_target") is None:
            raise ConfigError(f"Missing required option '{where}.dataroot_target' (the demo data's folder, "
                              "built there when missing)")
        info = build_demo_dataset(options["dataroot_target"])
        out = {**options, "dataroot_target": str(Path(options["dataroot_target"])),
               "meta_info_file": options.get("meta_info_file") or str(info["meta_info_file"])}
        if out.get("split_file") is None and out.get("split_ratio") is None and out.get("split_column") is None:
            out["split_file"] = str(info["split_file"])
        if out.get("split_ratio") is None:
            out["split_ratio"] = "802"
        return out
