"""The DataLoader keys of a ``datasets.<phase>`` section, typed and checked in one place.

pyiqa keeps loader and dataset keys in one YAML section; the dataset class receives the others
(:func:`split_options`), every loader builder (training, evaluation, the feature cache, train_clip's
IQA evaluation) receives a :class:`LoaderOptions`.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Tuple

from ..utils.option_fields import option, parse_section
from ..utils.options import check_flag, check_float, check_int
from ..utils.threads import MAX_LOADER_WORKERS


def _batch(value: Any, where: str) -> int:
    return check_int(value, where, 1, integral_floats=False)


def _workers(value: Any, where: str) -> int:
    return check_int(value, where, 0, integral_floats=False, maximum=MAX_LOADER_WORKERS)


def _fraction(value: Any, where: str) -> float:
    return check_float(value, where, 0, 1, max_open=True, hint="the fraction of unreadable images tolerated")


@dataclasses.dataclass(frozen=True, kw_only=True)
class LoaderOptions:
    """How a dataset's images are batched and loaded."""

    batch_size_per_gpu: int = option(1, "images per batch and process", check=_batch)
    num_worker_per_gpu: int = option(0, "DataLoader worker processes per process (intra-op threads take the "
                                     "cores they leave)", check=_workers)
    use_shuffle: bool = option(True, "shuffle the training images each epoch", check=check_flag)
    max_failed_fraction: float = option(0.01, "training images that cannot be decoded are replaced in their "
                                        "batch and counted; past this share the run stops and writes "
                                        "`failed_images.txt`", check=_fraction)


LOADER_KEYS = tuple(f.name for f in dataclasses.fields(LoaderOptions))


def split_options(section: Dict[str, Any]) -> Tuple[Dict[str, Any], Dict[str, Any]]:
    """(dataset options, loader options) of a YAML ``datasets.<phase>`` section."""
    return ({k: v for k, v in section.items() if k not in LOADER_KEYS},
            {k: v for k, v in section.items() if k in LOADER_KEYS})


def loader_options(section: Dict[str, Any], where: str) -> LoaderOptions:
    """The loader keys of ``section`` (a ``datasets.<phase>`` mapping), checked, defaults filled.

    Raises:
        ConfigError: a bad value, naming ``where.<key>``.
    """
    return parse_section(LoaderOptions, split_options(section)[1], where)
