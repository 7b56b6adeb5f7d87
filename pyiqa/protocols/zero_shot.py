"""Zero-shot evaluation: score every image of whole datasets with the zero-shot model cards, no training.

``pyiqa-eval-zero-shot`` is the command line. For each dataset name (the names of
``pyiqa-prepare-dataset``) the ``datasets.test`` section of its shipped test config (package data
``pyiqa/configs/test/UniQA/<config>.yml``, ``options/test/UniQA/`` in a clone) is built through the
dataset registry, so the CSV layout (``img_column``/``mos_column``), the MOS direction
(``lower_better``), LIVE Challenge's dropped leading rows and the test-time ``augment`` (SPAQ's resize
to 512, ...) are the ones training and ``pyiqa-test`` use. Its split keys are dropped, so every row
of the meta CSV is scored, except where a dataset class has its own default split (AVA: its official
test part, the usual AVA benchmark); the JSON records which rows (``rows``). The name ``demo`` selects
the embedded demo data (``test/UniQA/demo.yml``, built on first use; all 130 images), for smoke runs
and tests.

Each model card is built with ``pyiqa.create_metric`` and its network scores the dataset's loader
through the one evaluation loop (``pyiqa.models.predict``), in batches with a progress bar. The
correlations are computed against the normalised labels (1 = best, so DMOS sets are flipped), with
the project's metrics (``pyiqa.metrics``, scipy underneath).

Outputs per dataset, both written atomically, the JSON last:

* ``<out>/<dataset>_predictions.csv``: ``image, mos, mos_normalized, <one column per model>`` (the
  meta CSV's name and MOS, the label the correlations use, the scores; full float precision), plus a
  ``note`` column on every row when the backbone is random;
* ``<out>/<dataset>.json``: ``{dataset, images, backbone, random_weights, models: {model: {srcc, plcc,
  krcc}}}`` plus ``rows``, ``limit``, ``precision``, ``config`` (and ``note`` for random weights).

Resuming: a dataset whose JSON exists and was computed with the same backbone and ``limit`` and holds
every requested model is skipped (said in the log and in the returned result). A dataset interrupted
mid-way has no JSON yet and is scored again from its first image: a clean restart, no partial state.
Delete a JSON to recompute that dataset.
"""
from __future__ import annotations

import csv
import dataclasses
import io
import json
import logging
import time
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

from ..archs.clip_backbone import RANDOM_BACKBONES
from ..archs.model_cards import MODEL_CARDS
from ..data.prepare import PREPARERS
from ..utils.atomic import write_bytes
from ..utils.errors import ConfigError, DataError, PyiqaError
from ..utils.options import load_yaml
from ..utils.registry import closest
from ..utils.shipped_configs import configs_root
from .result_files import read_json_object

logger = logging.getLogger(__name__)

#: dataset name -> its test config's file stem, where the release named the config differently
CONFIG_NAMES = {"koniq10k": "koniq"}
DEMO = "demo"  # the embedded demo data: not a benchmark, for smoke runs and tests
DATASETS = tuple(sorted(PREPARERS)) + (DEMO,)
DEFAULT_MODELS = ("uniqa", "uniqa-single")
METRICS = ("srcc", "plcc", "krcc")
#: the keys that select rows of the meta CSV; dropped so that every row is scored. ``split_ratio`` stays:
#: it only qualifies an integer ``split_index``, and DemoIQADataset reads its presence as "no default
#: split file", so demo.yml's section scores all 130 demo images.
SPLIT_KEYS = ("split_file", "split_index", "split_column", "override_phase")


@dataclasses.dataclass
class ZeroShotRequest:
    """What to evaluate, and how (the command line's flags).

    Attributes:
        datasets: dataset names (``DATASETS``).
        models: model card names (default the zero-shot ensemble and single cue).
        backbone: UniQA_weight.pt path, 'random'/'random-tiny' (untrained; tests), or None: the usual
            weight lookup ($PYIQA_WEIGHTS_DIR, then $TORCH_HOME/hub/pyiqa).
        device: 'cpu', 'cuda', ...; None: CUDA when available.
        precision: 'auto', 'fp32', 'bf16' or 'fp16' (see ``pyiqa.utils.precision``).
        batch_size: images per forward pass (their 10 crops each); None: the metric's default.
        workers: DataLoader processes decoding images.
        limit: score only the first N images of each dataset (quick looks).
        out: output folder.
        dataroots: dataset name -> image folder, replacing the config's ``dataroot_target``.
        meta_dir: folder of the meta CSVs, replacing the configs' ``./datasets/meta_info/``.
        config_dir: where the test configs are; None: the installed ones (:func:`shipped_test_configs`).
    """

    datasets: Sequence[str]
    models: Sequence[str] = DEFAULT_MODELS
    backbone: Optional[str] = None
    device: Optional[str] = None
    precision: str = "auto"
    batch_size: Optional[int] = None
    workers: Optional[int] = None  # None: one per core beyond the first, at most 4
    limit: Optional[int] = None
    out: Path = Path("results/zero_shot")
    dataroots: Mapping[str, str] = dataclasses.field(default_factory=dict)
    meta_dir: Optional[Path] = None
    config_dir: Optional[Path] = None


@dataclasses.dataclass
class DatasetResult:
    """One dataset's outcome: the JSON's content, and whether it was skipped as done earlier."""

    name: str
    json_path: Path
    summary: Dict[str, Any]
    skipped: bool = False


# ------------------------------------------------------------------------------------------ checks
def _check_names(given: Sequence[str], known: Sequence[str], what: str, example: str) -> None:
    """At least one name, each known (else the closest), none twice."""
    if not given:
        raise ConfigError(f"No {what} given; {example}")
    for name in given:
        if name not in known:
            raise ConfigError(f"Unknown {what} '{name}'.{closest(name, known)} Known: {', '.join(known)}")
    if len(set(given)) != len(given):
        raise ConfigError(f"A {what} is given twice: {list(given)}")


def check_request(req: ZeroShotRequest) -> None:
    """Names, models, numbers, the meta folder and the device, before anything is read; ConfigError with
    the closest name."""
    _check_names(req.datasets, DATASETS, "dataset", f"choose from: {', '.join(DATASETS)}")
    _check_names(req.models, sorted(MODEL_CARDS), "model", f"e.g. {' '.join(DEFAULT_MODELS)}")
    for name in req.dataroots:
        if name not in req.datasets:
            raise ConfigError(f"--dataroot names '{name}', which is not among the datasets to evaluate "
                              f"({', '.join(req.datasets)}).{closest(name, req.datasets)}")
    for flag, value in (("--limit", req.limit), ("--batch-size", req.batch_size)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise ConfigError(f"{flag} must be a positive integer, got {value!r}")
    if req.workers is not None and (isinstance(req.workers, bool) or not isinstance(req.workers, int)
                                    or req.workers < 0):
        raise ConfigError(f"--workers must be an integer >= 0, got {req.workers!r}")
    if req.meta_dir is not None and not Path(req.meta_dir).is_dir():
        what = "is a file, not a folder" if Path(req.meta_dir).exists() else "no such folder"
        raise ConfigError(f"--meta-dir '{req.meta_dir}': {what}; expected the folder holding the meta CSVs "
                          "(as 'pyiqa-prepare-dataset NAME --out FOLDER' writes them)")
    if req.device is not None:
        from ..utils.devices import resolve_device  # torch: only when a device is named
        resolve_device(req.device, "--device")


def shipped_test_configs() -> Path:
    """The shipped test configs: package data, so found from any folder (``options/test/UniQA`` in a clone)."""
    return configs_root() / "test" / "UniQA"


def config_path(name: str, config_dir: Optional[Path] = None) -> Path:
    """The test config of dataset ``name`` in ``config_dir`` (None: the shipped one)."""
    return Path(config_dir or shipped_test_configs()) / f"{CONFIG_NAMES.get(name, name)}.yml"


def dataset_section(name: str, req: ZeroShotRequest) -> Tuple[Path, Dict[str, Any]]:
    """(config path, its ``datasets.test`` section without split keys, with the paths overridden)."""
    path = config_path(name, req.config_dir)
    if not path.is_file():
        raise ConfigError(f"{name}: test config '{path}' not found (the package ships test/UniQA/"
                          f"{path.name}: reinstall pyiqa-uniqa)")
    opt = load_yaml(path)
    section = (opt.get("datasets") or {}).get("test")
    if not isinstance(section, dict):
        raise ConfigError(f"{name}: '{path}' has no 'datasets.test' section")
    section = {k: v for k, v in section.items() if k not in SPLIT_KEYS}
    if name in req.dataroots:
        section["dataroot_target"] = req.dataroots[name]
    meta = section.get("meta_info_file")
    if req.meta_dir is not None and isinstance(meta, str):
        section["meta_info_file"] = str(Path(req.meta_dir) / Path(meta).name)
    return path, section


def check_files(name: str, section: Mapping[str, Any], config: Path, given_root: bool = False) -> Optional[str]:
    """The problem with a prepared dataset's image folder or meta CSV, naming the path and the
    ``prepare_dataset.py`` command that makes it; None when both are there. (The demo builds itself, but
    only in its config's default folder: a folder named with --dataroot, ``given_root``, must already
    hold a complete demo build, and is never created or written into.)"""
    root = Path(str(section.get("dataroot_target")))
    if name == DEMO:
        return _check_demo_root(root, config) if given_root else None
    if name not in PREPARERS:
        return None
    title = PREPARERS[name].title
    meta = Path(str(section.get("meta_info_file")))
    if not root.is_dir():
        return (f"{name}: image folder '{root}' does not exist. Download {title}, run "
                f"'pyiqa-prepare-dataset {name} --root <download folder>' and pass --dataroot "
                f"{name}=<the folder it prints> (or edit dataroot_target in {config})")
    if not meta.is_file():
        return (f"{name}: meta CSV '{meta}' does not exist. Write it with 'pyiqa-prepare-dataset "
                f"{name} --root <download folder> --out {meta.parent}' (another folder: pass --meta-dir)")
    return None


def _check_demo_root(root: Path, config: Path) -> Optional[str]:
    """A --dataroot given for the demo must hold a complete build of this version: anything else would
    make DemoIQADataset build (or rebuild) the demo in the user's folder, e.g. ``/etc`` as root."""
    from ..data.demo_dataset import is_complete, demo_paths
    if root.is_dir() and is_complete(root):
        return None
    what = ("no such folder" if not root.exists() else "is a file, not a folder" if not root.is_dir() else
            f"holds no complete demo dataset ({demo_paths(root)['meta_info_file'].name}, images/ ... of "
            "this version)")
    return (f"{DEMO}: --dataroot {DEMO}={root}: {what}; a folder named with --dataroot must already hold the "
            f"demo, it is never created or written into. Build one with 'python -m pyiqa.data.demo_dataset "
            f"--root DIR' and pass --dataroot {DEMO}=DIR, or leave --dataroot {DEMO} out to use the "
            f"default location of {config.name} (built on first use)")


def backbone_label(req: ZeroShotRequest) -> str:
    """The backbone the models will load: the resolved file, or the random backbone's name.
    CheckpointError (the weight lookup's message: where it looked, where to download) when missing."""
    from ..inference import weights  # torch: only once the names are known to be right
    return weights.resolve_backbone(MODEL_CARDS[req.models[0]], req.backbone)


def is_random(backbone: str) -> bool:
    return backbone in RANDOM_BACKBONES


def random_note(backbone: str) -> str:
    return f"scores from RANDOM weights (backbone '{backbone}'), NOT image quality"


# ------------------------------------------------------------------------------------------ resume
def done_earlier(json_path: Path, backbone: str, limit: Optional[int],
                 models: Sequence[str]) -> Tuple[Optional[Dict[str, Any]], str]:
    """(the finished result at ``json_path``, '') when it answers this request; else (None, why)."""
    if not (json_path.exists() or json_path.is_symlink()):
        return None, ""
    try:
        data = read_json_object(json_path)  # a regular file of a bounded size, never a device read forever
    except DataError as exc:
        return None, f"{exc}: recomputing"
    if not isinstance(data.get("models"), dict):
        return None, f"{json_path} is not a zero-shot result: recomputing"
    if data.get("backbone") != backbone:
        return None, f"{json_path} was computed with backbone '{data.get('backbone')}', now '{backbone}': recomputing"
    if data.get("limit") != limit:
        return None, f"{json_path} was computed with limit {data.get('limit')}, now {limit}: recomputing"
    missing = [m for m in models if m not in data["models"]]
    if missing:
        return None, f"{json_path} lacks model(s) {missing}: recomputing"
    return data, ""


# ------------------------------------------------------------------------------------------ scoring
def build_datasets(names: Sequence[str], req: ZeroShotRequest) -> Dict[str, Tuple[Path, Any]]:
    """Every dataset to score, built (images checked on disk) before any is scored; one DataError
    listing every problem found."""
    from ..data import build_dataset
    built, problems = {}, []
    for name in names:
        config, section = dataset_section(name, req)
        problem = check_files(name, section, config, given_root=name in req.dataroots)
        if problem is None:
            try:
                built[name] = (config, build_dataset(section, "test", where=f"{config.name}: datasets.test"))
            except PyiqaError as exc:
                problem = f"{name}: {exc}"
        if problem is not None:
            problems.append(problem)
    if problems:
        raise DataError("\n".join(problems))
    return built


def score_dataset(name: str, dataset: Any, metrics: Mapping[str, Any], req: ZeroShotRequest
                  ) -> Tuple[Dict[str, List[float]], List[float], List[int]]:
    """Scores of each model over the dataset's first ``req.limit`` images (all by default).

    Returns:
        ({model: scores}, normalised labels, dataset rows), all in the dataset's row order.
    """
    from torch.utils.data import Subset

    from ..data import build_dataloader
    from ..data.loader_options import LoaderOptions
    from ..models.predict import predict

    rows = list(dataset.rows)
    items = dataset
    if req.limit is not None and req.limit < len(rows):
        rows = rows[:req.limit]
        items = Subset(dataset, range(req.limit))
    expected = [str(dataset.image_path(row)) for row in rows]
    scores: Dict[str, List[float]] = {}
    labels: List[float] = []
    for model, metric in metrics.items():
        loading = LoaderOptions(batch_size_per_gpu=req.batch_size or metric.batch_size,
                                num_worker_per_gpu=loader_workers(req))
        loader = build_dataloader(items, loading, "test", where=f"{name} ({model})", device=metric.device)
        result = predict(metric.net, loader, metric.device, desc=f"{name} {model}", pbar=True)
        if result["img_path"] != expected:  # the CSV names rows by position: never mislabel one
            raise DataError(f"{name}: the loader returned the images in another order than the "
                            f"dataset's rows (a dataset class changing img_path?)")
        scores[model], labels = result["pred"], result["mos"]
    return scores, labels, rows


def correlations(pred: Sequence[float], labels: Sequence[float]) -> Dict[str, float]:
    """SRCC, PLCC and KRCC of ``pred`` against the normalised labels (the project's metrics)."""
    from ..metrics import DEFAULT_METRICS, calculate_metric
    return {m: calculate_metric(DEFAULT_METRICS[m], pred, labels, where=f"zero-shot {m}") for m in METRICS}


def predictions_csv(dataset: Any, rows: Sequence[int], labels: Sequence[float],
                    scores: Mapping[str, Sequence[float]], note: Optional[str]) -> bytes:
    """The predictions table (see the module docstring); floats written with full precision."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["image", "mos", "mos_normalized", *scores] + (["note"] if note else []))
    for i, row in enumerate(rows):
        writer.writerow([dataset.image_name(row), repr(dataset.mos(row)), repr(labels[i]),
                         *(repr(s[i]) for s in scores.values())] + ([note] if note else []))
    return buf.getvalue().encode("utf-8")


def evaluate(req: ZeroShotRequest) -> List[DatasetResult]:
    """Score the requested datasets (skipping those done earlier); see the module docstring.

    Raises:
        ConfigError: an unknown dataset or model, a bad flag. DataError: a dataset's folder, meta CSV
            or images missing (every dataset is checked before any is scored). CheckpointError:
            missing weights.
    """
    check_request(req)
    backbone = backbone_label(req)
    random_weights = is_random(backbone)
    note = random_note(backbone) if random_weights else None
    if note:
        logger.warning("Zero-shot %s: these are not quality results", note)
    out = Path(req.out)
    results: Dict[str, DatasetResult] = {}
    for name in req.datasets:
        json_path = out / f"{name}.json"
        data, why = done_earlier(json_path, backbone, req.limit, req.models)
        if data is not None:
            logger.info("%s: done earlier, skipped (%s; delete it to recompute)", name, json_path)
            results[name] = DatasetResult(name, json_path, data, skipped=True)
        elif why:
            logger.info("%s: %s", name, why)
    pending = [n for n in req.datasets if n not in results]
    if pending:
        datasets = build_datasets(pending, req)
        metrics = _create_metrics(req)
        for name in pending:
            config, dataset = datasets[name]
            results[name] = _run_dataset(name, config, dataset, metrics, req, backbone, note)
    return [results[n] for n in req.datasets]


def loader_workers(req: ZeroShotRequest) -> int:
    """``--workers``, or by default one decoding process per core beyond the first (at most 4), so
    workers and torch's threads never oversubscribe a small machine."""
    from ..utils.threads import available_cores
    return req.workers if req.workers is not None else min(4, available_cores() - 1)


def _create_metrics(req: ZeroShotRequest) -> Dict[str, Any]:
    from ..inference import create_metric
    from ..utils.threads import configure_threads
    configure_threads(loader_workers(req))
    return {model: create_metric(model, device=req.device, backbone=req.backbone, precision=req.precision,
                                 batch_size=req.batch_size)
            for model in req.models}


def _run_dataset(name: str, config: Path, dataset: Any, metrics: Mapping[str, Any], req: ZeroShotRequest,
                 backbone: str, note: Optional[str]) -> DatasetResult:
    start = time.perf_counter()
    scores, labels, rows = score_dataset(name, dataset, metrics, req)
    seconds = time.perf_counter() - start
    summary: Dict[str, Any] = {
        "dataset": name, "images": len(rows), "backbone": backbone, "random_weights": note is not None,
        "models": {model: correlations(pred, labels) for model, pred in scores.items()},
        "rows": dataset.split_source, "limit": req.limit,
        "precision": next(iter(metrics.values())).precision, "config": str(config)}
    if note:
        summary["note"] = note
    out = Path(req.out)
    # the CSV first, the JSON last: the JSON is what marks the dataset done
    write_bytes(out / f"{name}_predictions.csv", predictions_csv(dataset, rows, labels, scores, note))
    json_path = out / f"{name}.json"
    write_bytes(json_path, (json.dumps(summary, indent=2) + "\n").encode("utf-8"))
    logger.info("%s: %d images scored by %d model(s) in %.1f s (%.1f images/s per model); wrote %s", name,
                len(rows), len(scores), seconds, len(rows) * len(scores) / max(seconds, 1e-9), json_path)
    return DatasetResult(name, json_path, summary)
