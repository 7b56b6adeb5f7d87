"""Reading the result files the results table is built from, each checked on load.

- ``<results>/<name>/summary.json`` (pyiqa-run-splits): one run over several splits; the median,
  mean, std and count of each metric per protocol (``release``, optionally ``honest``).
- ``<results>/zero_shot/<dataset>.json`` (pyiqa-eval-zero-shot): zero-shot correlations of the
  single cue (``uniqa-single``) and the ensemble (``uniqa``).

A correlation is a number in [-1, 1]. A zero-shot file may hold NaN for one: the project's metrics
return NaN when the predictions or the labels are constant (an untrained backbone, a handful of images),
and the table shows it as "undefined". A summary may not: the split runner's statistics are over the
finite values only and it writes null where there is none, so NaN there, or any number outside its range,
is refused.

A file that cannot be read or does not have that form raises DataError naming the file and the key;
:func:`collect_results` skips such files with a warning (or, ``strict``, stops at the first). Every file
read here is a user's: only regular files (a link to one is fine) of at most :data:`JSON_LIMIT` bytes
(a summary is kilobytes) are read, so a link to ``/dev/zero`` or a FIFO is refused, never read forever.
"""
from __future__ import annotations

import json
import logging
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import yaml

from pyiqa.utils.bounded_read import MiB, read_bounded
from pyiqa.utils.errors import DataError

from .paper_results import canonical_dataset

logger = logging.getLogger(__name__)

RANDOM_BACKBONES = ("random", "random-tiny")  # network.backbone values that build untrained weights
METRICS = ("srcc", "plcc", "krcc")
STATS = ("median", "mean", "std", "n")
ZERO_SHOT_MODELS = {"uniqa-single": "single", "uniqa": "ensemble"}
JSON_LIMIT = 4 * MiB     # result JSONs and the run configs they name: kilobytes in practice
_SLACK = 1e-9            # float rounding at the ends of [-1, 1]


@dataclass
class RunSummary:
    """One ``summary.json``. ``protocols[protocol][metric]`` holds the stats; ``backbone`` is the
    config's ``network.backbone``, or 'unknown' with the reason in ``backbone_note``."""
    path: Path
    name: str
    dataset: str            # the project's name (koniq -> koniq10k)
    raw_dataset: str        # as the summary wrote it
    labels: Optional[int]   # None: all training labels
    prompts: Optional[List[str]]
    splits: List[int]
    protocols: Dict[str, Dict[str, Dict[str, Optional[float]]]]
    honest_unavailable: Optional[str]
    cross: Dict[str, Dict[str, Dict[str, Optional[float]]]]
    config: Optional[str]
    backbone: str = "unknown"
    backbone_note: str = ""
    mtime: float = 0.0

    @property
    def variant(self) -> str:
        """'single' (prompts [quality]), 'ensemble' (several groups), or 'unknown'."""
        if not self.prompts:
            return "unknown"
        return "single" if len(self.prompts) == 1 else "ensemble"

    @property
    def random_weights(self) -> bool:
        """Any of the run's backbones builds untrained weights."""
        return any(b in RANDOM_BACKBONES for b in self.backbone.split(", "))

    def value(self, protocol: str, metric: str) -> Optional[float]:
        """The median of ``metric`` under ``protocol``, or None when the summary lacks it."""
        return self.protocols.get(protocol, {}).get(metric, {}).get("median")

    def n_splits(self, protocol: str) -> Optional[int]:
        """How many splits the protocol's SRCC aggregates (its ``n``; else the ``splits`` count)."""
        if protocol not in self.protocols:
            return None
        n = self.protocols[protocol].get("srcc", {}).get("n")
        return int(n) if n is not None else len(self.splits)


@dataclass
class ZeroShotResult:
    """One ``zero_shot/<dataset>.json``; ``models[variant][metric]`` with variant 'single'/'ensemble'
    (other model keys stay under their own name)."""
    path: Path
    dataset: str
    raw_dataset: str
    images: int
    backbone: str
    random_weights: bool
    models: Dict[str, Dict[str, Optional[float]]]
    limit: Optional[int] = None     # only the first N images were scored (a quick look)
    mtime: float = 0.0


@dataclass
class Results:
    """Everything read from one results folder, and the files skipped (path, why)."""
    root: Path
    runs: List[RunSummary] = field(default_factory=list)
    zero_shot: List[ZeroShotResult] = field(default_factory=list)
    skipped: List[Tuple[Path, str]] = field(default_factory=list)


def read_json_object(path: str | Path, hint: str = "") -> Dict[str, Any]:
    """The JSON object in ``path``; DataError naming the file when it is unreadable, not JSON or not an
    object (``hint``: what to do about invalid JSON)."""
    path = Path(path)
    raw = read_bounded(path, JSON_LIMIT, "results JSON")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
        raise DataError(f"{path}: not valid JSON ({e}){hint}") from e
    if not isinstance(data, dict):
        raise DataError(f"{path}: must hold a JSON object, got {type(data).__name__}")
    return data


def _need(data: Dict[str, Any], key: str, kind: Any, what: str, path: Path, where: str = "") -> Any:
    full = f"{where}.{key}" if where else key
    if key not in data:
        raise DataError(f"{path}: key '{full}' is missing ({what})")
    value = data[key]
    if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
        raise DataError(f"{path}: '{full}' must be {what}, got {value!r}")
    return value


def _number(value: Any, where: str, path: Path) -> Optional[float]:
    """A number, or None for null (the split runner writes null for a median of no finite values and for
    the std of one split)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise DataError(f"{path}: '{where}' must be a number or null, got {value!r}")
    return float(value)


def _correlation(value: Optional[float], where: str, path: Path) -> Optional[float]:
    """``value`` unless it is a number no correlation can be: outside [-1, 1] or infinite (NaN passes;
    the caller decides what NaN means)."""
    if value is not None and not math.isnan(value) and not -1.0 - _SLACK <= value <= 1.0 + _SLACK:
        raise DataError(f"{path}: '{where}' is {value!r}, which no correlation can be: SRCC, PLCC and KRCC "
                        f"lie in [-1, 1] (the file was edited, or written by something other than pyiqa)")
    return value


def _stat(value: Any, metric: str, stat: str, where: str, path: Path) -> Optional[float]:
    """One statistic of a summary: null, or a finite number that fits the statistic (a correlation for
    median and mean, >= 0 for std, a whole count for n). NaN is refused: the split runner takes its
    statistics over the finite values only and writes null where there is none."""
    number = _number(value, where, path)
    if number is None:
        return None
    if math.isnan(number):
        raise DataError(f"{path}: '{where}' is NaN; pyiqa-run-splits takes its statistics over the finite "
                        f"values only and writes null where there is none, so NaN means the file was edited "
                        f"or written by something else (null: no value)")
    if stat == "n" and not (number >= 0 and number.is_integer()):
        raise DataError(f"{path}: '{where}' must be the number of splits (a whole number >= 0), got {value!r}")
    if stat == "std" and not 0.0 <= number < math.inf:
        raise DataError(f"{path}: '{where}' must be a standard deviation (>= 0), got {value!r}")
    if stat in ("median", "mean") and metric in METRICS:
        _correlation(number, where, path)
    elif math.isinf(number):
        raise DataError(f"{path}: '{where}' must be finite, got {value!r}")
    return number


def _metrics(block: Any, where: str, path: Path, stats: bool) -> Dict[str, Any]:
    """``{metric: {median, mean, std, n}}`` (``stats``, a summary) or ``{metric: number}`` (a zero-shot
    file: NaN is an undefined correlation, see the module doc); unknown metrics are kept, a malformed
    or impossible value is an error naming it."""
    if not isinstance(block, dict):
        raise DataError(f"{path}: '{where}' must be an object of metrics, got {block!r}")
    out: Dict[str, Any] = {}
    for metric, value in block.items():
        at = f"{where}.{metric}"
        if not stats:
            number = _number(value, at, path)
            out[metric] = _correlation(number, at, path) if metric in METRICS else number
            continue
        if not isinstance(value, dict) or "median" not in value:
            raise DataError(f"{path}: '{at}' must be an object with median, mean, std, n; got {value!r}")
        out[metric] = {k: _stat(value[k], metric, k, f"{at}.{k}", path) for k in STATS if k in value}
    return out


def read_summary(path: str | Path) -> RunSummary:
    """Read and check one split runner ``summary.json``; DataError naming the file and key otherwise."""
    path = Path(path)
    data = read_json_object(path)
    dataset = _need(data, "dataset", str, "the config's datasets.train.name", path)
    labels = data.get("labels")
    if labels is not None and (isinstance(labels, bool) or not isinstance(labels, int) or labels < 1):
        raise DataError(f"{path}: 'labels' must be null (all labels) or a positive integer, got {labels!r}")
    prompts = data.get("prompts")
    if prompts is not None and (not isinstance(prompts, list) or not all(isinstance(p, str) for p in prompts)):
        raise DataError(f"{path}: 'prompts' must be a list of prompt group names, got {prompts!r}")
    splits = data.get("splits", [])
    if not isinstance(splits, list) or not all(isinstance(i, int) and not isinstance(i, bool) for i in splits):
        raise DataError(f"{path}: 'splits' must be a list of split indices, got {splits!r}")
    protocols_raw = _need(data, "protocols", dict, "an object with 'release' (and 'honest')", path)
    _need(protocols_raw, "release", dict, "the release protocol's metrics", path, "protocols")
    protocols = {name: _metrics(block, f"protocols.{name}", path, stats=True)
                 for name, block in protocols_raw.items()}
    cross_raw = data.get("cross") or {}
    if not isinstance(cross_raw, dict):
        raise DataError(f"{path}: 'cross' must be an object of dataset -> metrics, got {cross_raw!r}")
    cross = {canonical_dataset(k): _metrics(v, f"cross.{k}", path, stats=True) for k, v in cross_raw.items()}
    config = data.get("config")
    run = RunSummary(path=path, name=str(data.get("name") or path.parent.name),
                     dataset=canonical_dataset(dataset), raw_dataset=dataset, labels=labels, prompts=prompts,
                     splits=splits, protocols=protocols, honest_unavailable=data.get("honest_unavailable"),
                     cross=cross, config=config if isinstance(config, str) else None,
                     mtime=os.stat(path).st_mtime)
    run.backbone, run.backbone_note = config_backbone(run.config, path)
    return run


def _backbone_of(config: Path) -> Tuple[Optional[str], str]:
    """``(network.backbone, '')`` of one YAML, or ``(None, why)``."""
    try:
        opt = yaml.safe_load(read_bounded(config, JSON_LIMIT, "run config").decode("utf-8"))
        return str(opt["network"]["backbone"]), ""
    except DataError as e:
        return None, f"config unreadable: {e}"
    except (yaml.YAMLError, UnicodeDecodeError, RecursionError) as e:
        return None, f"config '{config}' unreadable ({type(e).__name__})"
    except (KeyError, TypeError):
        return None, f"config '{config}' has no network.backbone"


def config_backbone(config: Optional[str], summary: Path) -> Tuple[str, str]:
    """``(network.backbone, '')`` of the run, or ``('unknown', why)``.

    First the per-split YAMLs the split runner wrote beside the summary (``configs/*.yml``: what actually
    ran, ``--force_yml`` overrides included; several backbones are joined with ', '), then the config
    the summary names. A relative config path is looked up from the working directory, then from the
    results folder's parent (the repository a run was started in, usually), then from the summary's folder.
    """
    read = [_backbone_of(p) for p in sorted(summary.parent.glob("configs/*.yml"))]
    derived = {b for b, _ in read if b}
    if derived:
        return ", ".join(sorted(derived)), ""
    if not config:
        return "unknown", next((why for _, why in read), "the summary names no config")
    candidates = [Path(config)] if Path(config).is_absolute() else \
        [Path(config), summary.parent.parent.parent / config, summary.parent / config]
    found = next((c for c in candidates if c.is_file()), None)
    if found is None:
        return "unknown", f"config '{config}' not found"
    backbone, why = _backbone_of(found)
    return (backbone, "") if backbone else ("unknown", why)


def read_zero_shot(path: str | Path) -> ZeroShotResult:
    """Read and check one zero-shot evaluator JSON; DataError naming the file and key otherwise."""
    path = Path(path)
    data = read_json_object(path)
    dataset = _need(data, "dataset", str, "the dataset's name", path)
    images = _need(data, "images", int, "the number of images scored", path)
    if images < 1:
        raise DataError(f"{path}: 'images' must be the number of images scored (>= 1), got {images!r}")
    backbone = _need(data, "backbone", str, "the backbone's path or name", path)
    random_weights = _need(data, "random_weights", bool, "true or false", path)
    models_raw = _need(data, "models", dict, "an object of model -> {srcc, plcc, krcc}", path)
    models = {ZERO_SHOT_MODELS.get(k, k): _metrics(v, f"models.{k}", path, stats=False)
              for k, v in models_raw.items()}
    limit = data.get("limit")  # optional: written by pyiqa-eval-zero-shot --limit
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int)):
        raise DataError(f"{path}: 'limit' must be null or an integer, got {limit!r}")
    return ZeroShotResult(path=path, dataset=canonical_dataset(dataset), raw_dataset=dataset, images=images,
                          backbone=backbone, random_weights=random_weights or backbone in RANDOM_BACKBONES,
                          models=models, limit=limit, mtime=os.stat(path).st_mtime)


def collect_results(root: str | Path, strict: bool = False) -> Results:
    """Read every ``<root>/*/summary.json`` and ``<root>/zero_shot/*.json``.

    A malformed file is skipped with a warning and listed in ``skipped`` (``strict``: its DataError is
    raised). DataError when ``root`` is not a folder or nothing usable is in it.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"results folder '{root}' does not exist (or is not a folder); pass the folder "
                        f"holding <name>/summary.json and zero_shot/<dataset>.json")
    results = Results(root=root)
    files = [(p, read_summary, results.runs) for p in sorted(root.glob("*/summary.json"))]
    files += [(p, read_zero_shot, results.zero_shot) for p in sorted((root / "zero_shot").glob("*.json"))]
    for path, reader, into in files:
        try:
            into.append(reader(path))
        except DataError as e:
            if strict:
                raise
            logger.warning("skipped %s", e)
            results.skipped.append((path, str(e)))
    if not results.runs and not results.zero_shot:
        why = f"; {len(results.skipped)} file(s) skipped as malformed (see the warnings)" if results.skipped \
            else ""
        raise DataError(f"no results in '{root}'{why}: expected <name>/summary.json (pyiqa-run-splits) "
                        f"or zero_shot/<dataset>.json (pyiqa-eval-zero-shot)")
    return results
