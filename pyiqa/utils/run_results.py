"""``results.json``: what one adapter training run reports, as a typed and versioned record.

The trainer (:mod:`pyiqa.train`) writes it at the end of a run; the split runner
(:mod:`pyiqa.protocols.aggregate`) reads one per split. Keeping both sides on this one record means a key
is named, typed and documented once. Version 1 added ``version`` and ``test_untrained``; a file without
``version`` was written before and reads the same way (version 0, no untrained numbers).
"""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Union

from .errors import DataError

RESULTS_VERSION = 1
Metrics = Dict[str, float]


@dataclasses.dataclass
class RunResults:
    """One run's numbers.

    Attributes:
        name, iterations, seconds: the run's name, optimiser steps and training time.
        feature_cache, cache_seconds: whether the cached-features loop ran, and what building it cost.
        best: per ``val*`` set, the best key metric: ``{metric, value, iter, metrics}`` (validating on the
            test part, the release's protocol).
        test: the final network on each ``test*`` set.
        test_best_network: ``net_best.pth`` on each ``test*`` set (the honest protocol when ``val`` is a
            validation part carved out of training).
        test_untrained: the network before its first iteration on each ``test*`` set
            (``val.val_at_start``), what training is measured against.
    """

    name: str
    iterations: int
    seconds: float
    feature_cache: bool = False
    cache_seconds: float = 0.0
    best: Dict[str, Dict[str, Any]] = dataclasses.field(default_factory=dict)
    test: Dict[str, Metrics] = dataclasses.field(default_factory=dict)
    test_best_network: Dict[str, Metrics] = dataclasses.field(default_factory=dict)
    test_untrained: Dict[str, Metrics] = dataclasses.field(default_factory=dict)
    version: int = RESULTS_VERSION

    def to_json(self) -> bytes:
        return json.dumps(dataclasses.asdict(self), indent=2).encode()

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], path: Union[str, Path]) -> "RunResults":
        """The record of a parsed ``results.json``; DataError naming the file and key for a wrong type or
        a version this code does not know."""
        version = data.get("version", 0)
        if isinstance(version, bool) or not isinstance(version, int) or not 0 <= version <= RESULTS_VERSION:
            raise DataError(f"{path}: 'version' is {version!r}; this pyiqa-uniqa reads results.json versions "
                            f"0 to {RESULTS_VERSION} (was it written by a newer one?)")
        kinds = {f.name: f.type for f in dataclasses.fields(cls)}
        values: Dict[str, Any] = {}
        for key, kind in kinds.items():
            if key not in data:
                continue
            value = data[key]
            expected = {"str": str, "int": int, "float": (int, float), "bool": bool}.get(kind, dict)
            if (isinstance(value, bool) and expected is not bool) or not isinstance(value, expected):
                raise DataError(f"{path}: '{key}' must be {_what(kind)}, got {value!r}")
            values[key] = float(value) if kind == "float" else value
        for key in ("name", "iterations", "seconds"):
            if key not in values:
                raise DataError(f"{path}: no '{key}'; is it a results.json written by pyiqa-train?")
        values["version"] = version  # a file without one keeps saying it is older
        return cls(**values)

    def metrics(self, *keys: str) -> Optional[Metrics]:
        """The numeric metrics at ``keys`` (e.g. ``'best', 'val', 'metrics'``), or None when absent."""
        node: Any = dataclasses.asdict(self)
        for key in keys:
            if not isinstance(node, dict) or key not in node:
                return None
            node = node[key]
        if not isinstance(node, dict):
            return None
        return {k: float(v) for k, v in node.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _what(kind: str) -> str:
    return {"str": "text", "int": "an integer", "float": "a number", "bool": "true or false"}.get(kind, "an object")
