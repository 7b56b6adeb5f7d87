"""Train and test every split of a dataset (or every few-label repeat), then summarise the protocols.

:func:`run_splits` checks everything first (the YAML, the options of every derived config, the split and
few-label files, runs left half-done, runs trained with other options) and creates nothing before that.
Then it writes the per-split YAMLs to ``<results>/<name>/configs/``, runs the trainer once per split as a
subprocess (one after the other, or one process per GPU with ``CUDA_VISIBLE_DEVICES`` set), skips splits
whose ``experiments/<run>/results.json`` exists, and writes ``splits.csv``, ``summary.json`` and
``summary.md`` (:mod:`pyiqa.protocols.aggregate`). Each child's output goes to
``<results>/<name>/logs/<run>.log``. Which protocols a split supports: :mod:`pyiqa.protocols.split_configs`.
"""
from __future__ import annotations

import logging
import os
import queue
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import yaml

from ..data.splits import split_pickle_name
from ..utils.atomic import write_if_changed
from ..utils.errors import ConfigError, TrainingError
from ..utils.options import apply_overrides, load_yaml
from . import aggregate
from .split_configs import (add_test_section, base_name, cross_sections, derive_options, differences,
                            few_label_file, network_prompts, run_name, selects_by_split, validation_part)

logger = logging.getLogger(__name__)


@dataclass
class SplitRunArgs:
    """What the command line gives (see pyiqa/protocols/commands/run_splits.py for each flag)."""
    opt: str
    splits: List[int]
    train_command: List[str]                 # e.g. [python, -m, pyiqa.train]
    test_options_dir: Path                   # test/UniQA of the shipped configs: the --test-on ones
    labels: Optional[int] = None
    gpus: Optional[List[int]] = None
    auto_resume: bool = False
    force_yml: List[str] = field(default_factory=list)
    root: str = "."
    results: str = "results"
    tag: Optional[str] = None
    test_on: List[str] = field(default_factory=list)
    dataroots: Dict[str, str] = field(default_factory=dict)
    dry_run: bool = False


@dataclass
class Job:
    """One split: its derived config, experiment folder and protocol, and what is on disk already."""
    split: int
    name: str
    options: Dict[str, Any]
    config: Path
    exp_dir: Path
    log: Path
    val_part: str
    honest_note: str
    state: str = "new"                       # 'finished', 'interrupted' (training states, no results) or 'new'

    @property
    def results(self) -> Path:
        return self.exp_dir / "results.json"


@dataclass
class Plan:
    name: str
    out_dir: Path
    dataset: str
    prompts: List[str]
    jobs: List[Job]


def parse_splits(spec: str) -> List[int]:
    """``'1-10'``, ``'1,3,5'`` or ``'1-3,7'`` -> sorted distinct split numbers (>= 1); ConfigError otherwise."""
    out = set()
    for part in str(spec).split(","):
        lo, sep, hi = part.strip().partition("-")
        if not (lo.isdigit() and (hi.isdigit() if sep else True)):
            raise ConfigError(f"--splits '{spec}': '{part}' is not a split number or range; write e.g. 1-10, "
                              "1,3,5 or 1-3,7 (splits count from 1)")
        a, b = int(lo), int(hi) if sep else int(lo)
        if a < 1 or b < a:
            raise ConfigError(f"--splits '{spec}': '{part}' is an empty range or below 1; write low-high with "
                              "1 <= low <= high, e.g. 1-10")
        out.update(range(a, b + 1))
    return sorted(out)


def parse_gpus(spec: str) -> List[int]:
    """``'0,1,2,3'`` -> [0, 1, 2, 3]: distinct device numbers; checked against the visible devices when
    CUDA is present (without CUDA the processes run side by side on the CPU, with a warning)."""
    gpus = []
    for entry in str(spec).split(","):
        if not entry.strip().isdigit() or int(entry) in gpus:
            why = "given twice" if entry.strip().isdigit() else "not a GPU number"
            raise ConfigError(f"--gpus '{spec}': '{entry}' is {why}; give distinct device numbers >= 0 "
                              "separated by commas, e.g. 0,1,2,3")
        gpus.append(int(entry))
    import torch
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if count and max(gpus) >= count:
        raise ConfigError(f"--gpus '{spec}': device {max(gpus)} does not exist; {count} visible (0..{count - 1})")
    if not count:
        logger.warning("--gpus %s: CUDA is not available, so the %d processes share the CPU", spec, len(gpus))
    return gpus


# ---------------------------------------------------------------------------------------------- plan
def make_plan(args: SplitRunArgs) -> Plan:
    """Every check, nothing written: the jobs with their derived options and what is on disk."""
    from ..engine.options import validate_options  # imports torch: only once the arguments are sane
    if args.labels is not None and args.labels < 1:
        raise ConfigError(f"--labels {args.labels}: the number of training labels must be >= 1 (50, 100, 200)")
    user_opt = load_yaml(args.opt)
    cross = cross_sections(args.test_on, args.test_options_dir, args.dataroots)
    with_cross = {**user_opt, "datasets": {**(user_opt.get("datasets") or {}),
                                           **{f"test_{k}": v for k, v in cross.items()}}}
    opt = apply_overrides(with_cross, args.force_yml)  # so --force_yml can also tune a test_<dataset> section
    datasets = opt.get("datasets") or {}
    for key in ("train", "val"):
        if not isinstance(datasets.get(key), dict):
            raise ConfigError(f"{args.opt}: the split runner needs a datasets.{key} section (the release "
                              "protocol is the best validation score)")
    if args.labels is None and not selects_by_split(datasets["train"]):
        if list(args.splits) != [1]:
            raise ConfigError(f"{args.opt}: datasets.train has no split_file or split_index, so every split "
                              "would train on the same rows; give the 10-split file "
                              f"({split_pickle_name('<name>', 'ratio802')}), or --splits 1 for one run on the "
                              "dataset's own "
                              "(official) split")
        logger.info("%s: no split selection: one run on the dataset's own split (AVA's and AADB's "
                    "official split)", args.opt)
    prompts = network_prompts(opt.get("network"))
    name = base_name(str(opt.get("name", "run")))
    if args.tag:
        name = f"{name}_{args.tag}"
    elif prompts != network_prompts(user_opt.get("network")):
        name = f"{name}_{'-'.join(map(str, prompts))}"  # e.g. the multi-cue adapter beside the single cue
    labels_file = few_label_file(datasets["train"], args.labels) if args.labels is not None else None
    out_name = name if args.labels is None else f"{name}_labels{args.labels}"
    out_dir = Path(args.results) / out_name
    jobs = []
    for split in args.splits:
        run = run_name(name, split, args.labels)
        derived = derive_options(opt, split, run, labels_file)
        validate_options(derived, is_train=True)
        val_part, note = validation_part(derived["datasets"], split)
        if val_part == "val" and add_test_section(derived["datasets"]):
            logger.info("%s: added datasets.test (the test part of split %d) for the honest protocol", run, split)
        elif val_part == "val" and not any(k.startswith("test") for k in derived["datasets"]):
            logger.warning("%s: split %d has no test part and the config no datasets.test: nothing is tested "
                           "(use a split with train/val/test parts, e.g. split_ratio: 712)", run, split)
        jobs.append(Job(split, run, derived, out_dir / "configs" / f"{run}.yml",
                        Path(args.root) / "experiments" / run, out_dir / "logs" / f"{run}.log", val_part, note))
    for job in jobs:
        _check_existing(job, args.auto_resume)
    return Plan(out_name, out_dir, str(datasets["train"].get("name", "")), prompts, jobs)


def _check_existing(job: Job, auto_resume: bool) -> None:
    """Set ``job.state``; refuse a run trained with other options, or one left half-done without
    --auto_resume (train.py would archive it and start again)."""
    if not job.exp_dir.is_dir():
        return
    saved = job.exp_dir / f"{job.name}_options.yml"
    if saved.is_file():
        # both as resolved configs: the run saved its resolved options, older runs what they read
        from ..engine.options import parse_experiment
        new = parse_experiment(job.options, is_train=True)[0].to_dict()
        old = yaml.safe_load(saved.read_text(encoding="utf-8")) or {}
        try:
            old = parse_experiment(old, is_train=True)[0].to_dict()
        except ConfigError:
            pass  # written by a version with other keys: compared as written
        diffs = differences(old, yaml.safe_load(yaml.safe_dump(new, sort_keys=False)))
        if diffs:
            raise ConfigError(f"split {job.split}: {job.exp_dir} was trained with other options "
                              f"({'; '.join(diffs[:3])}{'; ...' if len(diffs) > 3 else ''}); give --tag to keep "
                              "both runs side by side, or move that folder away")
    states = sorted(int(p.stem) for p in (job.exp_dir / "training_states").glob("*.state") if p.stem.isdigit())
    if job.results.is_file():
        job.state = "finished"
    elif states:
        job.state = "interrupted"
        if not auto_resume:
            raise ConfigError(f"split {job.split}: {job.exp_dir} stopped at iteration {states[-1]} without "
                              "results.json; pass --auto_resume to continue it (without it train.py would "
                              "archive that run and start again)")
    else:
        logger.info("split %d: %s holds no training state: train.py moves it aside and starts again",
                    job.split, job.exp_dir)


# ---------------------------------------------------------------------------------------------- run
def _child_env(gpu: Optional[int], parallel: int) -> Dict[str, str]:
    env = dict(os.environ)
    if gpu is not None:
        visible = [v for v in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if v.strip()]
        env["CUDA_VISIBLE_DEVICES"] = visible[gpu] if gpu < len(visible) else str(gpu)
    if parallel > 1 and "OMP_NUM_THREADS" not in env:  # parallel children share the cores
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // parallel))
    return env


def _command(job: Job, args: SplitRunArgs) -> List[str]:
    return [*args.train_command, "-opt", str(job.config), "--root", str(args.root)] + (
        ["--auto_resume"] if args.auto_resume else [])


def _train(job: Job, args: SplitRunArgs, gpu: Optional[int], parallel: int) -> Optional[str]:
    """Run train.py for one split; None on success, else what went wrong."""
    cmd = _command(job, args)
    where = "" if gpu is None else f" on GPU {gpu}"
    logger.info("split %d: %s %s%s (output: %s)", job.split, "resuming" if job.state == "interrupted" else
                "training", job.name, where, job.log)
    tic = time.time()
    job.log.parent.mkdir(parents=True, exist_ok=True)
    with open(job.log, "a", encoding="utf-8") as log:
        log.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} {' '.join(cmd)}\n")
        log.flush()
        code = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, env=_child_env(gpu, parallel)).returncode
    if code != 0:
        tail = [line for line in job.log.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]
        return f"split {job.split} failed (exit {code}; {job.log}): {tail[-1] if tail else 'no output'}"
    if not job.results.is_file():
        return f"split {job.split}: train.py ended without writing {job.results} (see {job.log})"
    logger.info("split %d: done in %.0f s", job.split, time.time() - tic)
    return None


def _run_all(jobs: List[Job], args: SplitRunArgs) -> List[str]:
    """Train the jobs, sequentially or one per GPU; the failures' messages."""
    if not args.gpus:
        return [e for e in (_train(job, args, None, 1) for job in jobs) if e]
    free: "queue.Queue[int]" = queue.Queue()
    for gpu in args.gpus:
        free.put(gpu)

    def one(job: Job) -> Optional[str]:
        gpu = free.get()
        try:
            return _train(job, args, gpu, len(args.gpus))
        finally:
            free.put(gpu)

    pool = ThreadPoolExecutor(max_workers=len(args.gpus))
    try:
        return [e for e in pool.map(one, jobs) if e]
    finally:  # after Ctrl-C (which the children get too) start no further split
        pool.shutdown(wait=True, cancel_futures=True)


def run_splits(args: SplitRunArgs) -> Optional[Dict[str, Any]]:
    """The whole split run (see the module docstring); returns the summary (None for a dry run).

    Raises:
        PyiqaError: a user error found by the checks (nothing created then), or TrainingError naming the
            splits that failed (after writing the summary of those that finished).
    """
    plan = make_plan(args)
    notes = sorted({j.honest_note for j in plan.jobs if j.val_part != "val"})
    logger.info("%s: %d splits; protocols: release (best validation score)%s", plan.name, len(plan.jobs),
                "; honest unavailable: " + " / ".join(notes) if notes else
                ", honest (net_best.pth, chosen on a validation part, on test)")
    for job in plan.jobs:
        write_if_changed(job.config, yaml.safe_dump(job.options, sort_keys=False).encode("utf-8"))
    if args.dry_run:
        for job in plan.jobs:
            logger.info("split %d (%s): %s", job.split, job.state, " ".join(_command(job, args)))
        return None
    for job in plan.jobs:
        if job.state == "finished":
            logger.info("split %d: finished (%s): skipped", job.split, job.results)
    failures = _run_all([j for j in plan.jobs if j.state != "finished"], args)
    records = [aggregate.split_record(j.split, args.labels, aggregate.read_results(j.results),
                                      val_part=j.val_part, honest_note=j.honest_note, cross=args.test_on)
               for j in plan.jobs if j.results.is_file()]
    summary = None
    if records:
        summary = aggregate.summarize(records, name=plan.name, dataset=plan.dataset, config=str(args.opt),
                                      labels=args.labels, prompts=plan.prompts, cross=args.test_on)
        files = aggregate.write_outputs(plan.out_dir, records, summary, args.test_on)
        _log_summary(summary, files)
    if failures:
        raise TrainingError(f"{len(failures)} of {len(plan.jobs)} splits failed: " + " | ".join(failures))
    return summary


def _log_summary(summary: Dict[str, Any], files: List[Path]) -> None:
    for protocol, block in summary["protocols"].items():
        logger.info("%s over %d splits: %s", protocol, block["srcc"]["n"], "  ".join(
            f"{m} {aggregate.format_stats(block[m])}" for m in aggregate.METRICS))
    if "honest_unavailable" in summary:
        logger.info("honest protocol not available: %s", summary["honest_unavailable"])
    logger.info("wrote %s", ", ".join(str(f) for f in files))

