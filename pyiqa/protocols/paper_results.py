"""The UniQA paper's numbers (``paper_results.yml`` beside this file), checked on load, and the one table
that maps the dataset names configs and results use to the project's dataset names.

Torch-free: the results table reads this without building any model.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from pyiqa.utils.errors import ConfigError
from pyiqa.utils.options import load_yaml
from pyiqa.utils.registry import closest

PAPER_YAML = Path(__file__).with_name("paper_results.yml")

# The project's dataset names (pyiqa-prepare-dataset) of the datasets the paper reports.
PAPER_DATASETS = ("tid2013", "csiq", "kadid10k", "livec", "koniq10k", "spaq", "live", "ava", "aadb",
                  "agiqa3k")

# Other spellings -> the project's name. Configs say 'koniq' (datasets.train.name); the paper's column
# headers and common usage say CLIVE, KADID, AGIQA-3K. Names not listed here are kept as they are.
DATASET_ALIASES = {
    "koniq": "koniq10k", "koniq-10k": "koniq10k",
    "clive": "livec", "live_challenge": "livec", "livechallenge": "livec",
    "kadid": "kadid10k", "kadid-10k": "kadid10k",
    "agiqa-3k": "agiqa3k", "agiqa-1k": "agiqa1k", "aigiqa-20k": "aigiqa20k",
}

FEW_LABELS = (50, 100, 200)
VARIANTS = ("single", "ensemble")

# section -> (keys of the section besides `datasets`, the tables its entries may name (the results table
# renders exactly these), the number keys of one dataset entry, those of them that may be null)
_SECTIONS: Dict[str, Tuple[Tuple[str, ...], Tuple[str, ...], Tuple[str, ...], Tuple[str, ...]]] = {
    "full_label": (("variant",), ("1", "2-3"), ("srcc", "plcc", "best_other_srcc", "best_other_plcc"),
                   ("best_other_srcc", "best_other_plcc")),
    "zero_shot": ((), ("4",), ("single", "ensemble"), ()),
    "few_label": (("variant",), ("5",), tuple(f"labels_{n}" for n in FEW_LABELS), ()),
}
_TOP_KEYS = ("version", "source", *_SECTIONS)
# Optional top-level section: datasets the UniQA authors say they report, whose numbers we could not find
# published, each with where the claim is and where we looked (so the gap is stated, never filled in).
NOT_FOUND = "not_found"
_NOT_FOUND_KEYS = ("claimed_in", "searched")


def canonical_dataset(name: str) -> str:
    """The project's name for a dataset name as configs or result files write it (``koniq`` ->
    ``koniq10k``); unknown names come back lower-cased, unchanged otherwise."""
    key = str(name).strip().lower()
    return DATASET_ALIASES.get(key, key)


def _check_keys(mapping: Any, required: Sequence[str], where: str, path: Path) -> Mapping[str, Any]:
    """``mapping`` must be a mapping holding exactly the ``required`` keys; errors name the key."""
    if not isinstance(mapping, dict):
        raise ConfigError(f"{path}: '{where}' must be a mapping, got {type(mapping).__name__}")
    for key in mapping:
        if key not in required:
            raise ConfigError(f"{path}: unknown key '{_join(where, key)}'.{closest(str(key), required)} "
                              f"Valid keys there: {', '.join(required)}")
    missing = [k for k in required if k not in mapping]
    if missing:
        raise ConfigError(f"{path}: '{where or 'top level'}' lacks key(s) {', '.join(missing)}")
    return mapping


def _join(where: str, key: Any) -> str:
    return f"{where}.{key}" if where else str(key)


def _correlation(value: Any, where: str, path: Path, nullable: bool) -> Optional[float]:
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or not -1.0 <= value <= 1.0:
        allowed = " or null" if nullable else ""
        raise ConfigError(f"{path}: '{where}' must be a correlation, a number in [-1, 1]{allowed}, "
                          f"got {value!r}")
    return float(value)


def _check_dataset(name: Any, entry: Any, tables: Sequence[str], numbers: Sequence[str],
                   nullable: Sequence[str], where: str, path: Path) -> Dict[str, Any]:
    if name not in PAPER_DATASETS:
        raise ConfigError(f"{path}: unknown dataset '{where}'.{closest(str(name), PAPER_DATASETS)} "
                          f"Use the project's names: {', '.join(PAPER_DATASETS)}")
    _check_keys(entry, ("table", "column", *numbers), where, path)
    out: Dict[str, Any] = {}
    for key in ("table", "column"):
        if not isinstance(entry[key], str) or not entry[key].strip():
            raise ConfigError(f"{path}: '{where}.{key}' must be a non-empty string (quote numbers: "
                              f"table: \"1\"), got {entry[key]!r}")
        out[key] = entry[key]
    if out["table"] not in tables:
        raise ConfigError(f"{path}: '{where}.table' must be one of {', '.join(repr(t) for t in tables)} in "
                          f"this section, got {out['table']!r}")
    for key in numbers:
        out[key] = _correlation(entry[key], f"{where}.{key}", path, key in nullable)
    return out


def load_paper_results(path: str | Path = PAPER_YAML) -> Dict[str, Any]:
    """Read and check the paper's numbers.

    Returns ``{'version', 'source', 'full_label': {'variant', 'datasets': {name: entry}}, 'zero_shot':
    {'datasets': ...}, 'few_label': {'variant', 'datasets': ...}, 'not_found': {name: {'claimed_in',
    'searched'}}}`` (``not_found`` is optional in the file, ``{}`` when absent); an entry holds ``table``,
    ``column`` and its numbers as floats (``best_other_*`` may be None). Raises ConfigError naming the key for an
    unknown or missing key, an unknown dataset, or a value that is not a correlation in [-1, 1].
    """
    path = Path(path)
    raw = load_yaml(path)
    missing_numbers = raw.pop(NOT_FOUND, {}) if isinstance(raw, dict) else {}
    raw = _check_keys(raw, _TOP_KEYS, "", path)
    out: Dict[str, Any] = {"version": raw["version"], "source": str(raw["source"])}
    for section, (extra, tables, numbers, nullable) in _SECTIONS.items():
        body = _check_keys(raw[section], ("datasets", *extra), section, path)
        checked: Dict[str, Any] = {}
        if "variant" in extra:
            if body["variant"] not in VARIANTS:
                raise ConfigError(f"{path}: '{section}.variant' must be one of {', '.join(VARIANTS)}, "
                                  f"got {body['variant']!r}")
            checked["variant"] = body["variant"]
        datasets = body["datasets"]
        if not isinstance(datasets, dict) or not datasets:
            raise ConfigError(f"{path}: '{section}.datasets' must be a non-empty mapping of dataset names")
        checked["datasets"] = {name: _check_dataset(name, entry, tables, numbers, nullable,
                                                    f"{section}.datasets.{name}", path)
                               for name, entry in datasets.items()}
        out[section] = checked
    out[NOT_FOUND] = _check_not_found(missing_numbers, out, path)
    return out


def _check_not_found(entries: Any, checked: Mapping[str, Any], path: Path) -> Dict[str, Dict[str, str]]:
    """``not_found``: dataset -> {claimed_in, searched} (non-empty text), for datasets no section gives."""
    if entries is None:
        return {}
    if not isinstance(entries, dict):
        raise ConfigError(f"{path}: '{NOT_FOUND}' must be a mapping of dataset names, got {type(entries).__name__}")
    with_numbers = {name for section in _SECTIONS for name in checked[section]["datasets"]}
    out: Dict[str, Dict[str, str]] = {}
    for name, entry in entries.items():
        where = f"{NOT_FOUND}.{name}"
        if name in with_numbers:
            raise ConfigError(f"{path}: '{where}': the file gives numbers for '{name}'; list it in one place")
        _check_keys(entry, _NOT_FOUND_KEYS, where, path)
        for key in _NOT_FOUND_KEYS:
            if not isinstance(entry[key], str) or not entry[key].strip():
                raise ConfigError(f"{path}: '{where}.{key}' must be a non-empty string, got {entry[key]!r}")
        out[str(name)] = {key: entry[key] for key in _NOT_FOUND_KEYS}
    return out
