"""The run runtime both trainers share (the adapter trainer and ``train_clip``).

A :class:`Run` owns what every training run needs and nothing model-specific: the process's rank and
device, the experiment folder (``<root>/experiments/<name>``), logging, the TensorBoard writer, the
seed, the progress counters, and the training states: their resume lookup, atomic save with every
rank's RNG state, pruning and exact restore. A trainer builds its data and model between
:meth:`Run.__init__` and :meth:`Run.resume`, then iterates :meth:`Run.batches`; it keeps only its own
step and evaluation.
"""
from __future__ import annotations

import argparse
import errno
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

import torch
import yaml

from ..utils import dist
from ..utils.checkpoint import atomic_write, is_write_failure, load_checkpoint
from ..utils.errors import CheckpointError, ConfigError, DataError, OutputError, TrainingError
from ..utils.experiment import (ExperimentPaths, RunLock, check_is_folder_or_absent, release_locks,
                                resume_candidates)
from ..utils.logger import ScalarWriter, attach_log_file, detach_log_file, setup_logging
from ..utils.rng import get_rng_state, set_random_seed, set_rng_state
from ..utils.shipped_configs import add_config_arguments, resolve_option_file
from ..version import __version__
from .run_options import RunOptions
from ..utils.worker_guard import guarded_batches, worker_error

logger = logging.getLogger(__name__)


def parse_run_args(argv: Optional[Sequence[str]], description: str, example_override: str,
                   kind: str = "train") -> argparse.Namespace:
    """Parse a trainer's command line (the flags of :func:`add_run_arguments`); ``args.opt`` becomes
    the YAML file it names: a path, or an installed config of ``kind`` by name
    (:func:`pyiqa.utils.shipped_configs.resolve_option_file`). ConfigError when it names neither."""
    parser = argparse.ArgumentParser(description=description)
    args = add_run_arguments(parser, example_override, kind).parse_args(argv)
    args.opt = str(resolve_option_file(args.opt, kind))
    return args


def add_run_arguments(parser: argparse.ArgumentParser, example_override: str,
                      kind: str = "train") -> argparse.ArgumentParser:
    """The command-line flags every trainer takes: -opt, --list-configs (the installed configs of
    ``kind``), --launcher, --auto_resume, --force_yml, --root."""
    add_config_arguments(parser, kind, "experiment YAML")
    parser.add_argument("--launcher", choices=["none", "pytorch"], default="none",
                        help="'pytorch' under torchrun for DDP (NCCL on GPUs, gloo on CPU)")
    parser.add_argument("--auto_resume", action="store_true", help="continue from the newest training state")
    parser.add_argument("--force_yml", nargs="+", default=[], metavar="KEY.SUB=VALUE",
                        help=f"override options, e.g. {example_override}")
    parser.add_argument("--root", default=".", help="folder that receives experiments/ (default: cwd)")
    return parser


def select_device(num_gpu: Any, local_rank: int) -> torch.device:
    """``num_gpu: 0`` is CPU; ``num_gpu >= 1`` (or 'auto') without CUDA falls back to CPU, loudly."""
    if num_gpu in (0, "0", None, False):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        if num_gpu != "auto":
            logger.warning("num_gpu: %s but CUDA is not available: training on CPU", num_gpu)
        return torch.device("cpu")
    count = torch.cuda.device_count()
    if isinstance(num_gpu, int) and not isinstance(num_gpu, bool) and num_gpu > count:
        raise ConfigError(f"'num_gpu' is {num_gpu} but this machine has {count} CUDA device(s); write a number "
                          "up to that, or auto (one process per GPU: launch with torchrun)")
    return torch.device("cuda", local_rank)


class Run:
    """Set-up of one training run, in the order things are needed; see the module docstring.

    Building a Run changes nothing global: logging is configured by the entry point
    (:func:`run_main`), and the run's own log file is attached by :meth:`start` and detached by
    :meth:`close`. Messages go to the run's own logger, ``pyiqa.engine.run.<name>``.

    Args:
        options: the typed sections every trainer shares (name, seed, devices, path, logger, dist).
        config: the whole resolved config as plain data: saved beside the run and in every state.
        root: the folder that receives ``experiments/``.
        config_file: the YAML the options came from (logged).
        launcher: ``'pytorch'`` under torchrun (one process per device), else ``'none'``.
        auto_resume: continue from the newest training state of this name.
        notices: lines to log first (e.g. ignored legacy keys).
        log_prefix: the log file is ``<log_prefix>_<name>_<time>.log`` in the experiment folder.
        logger_names: logger trees the log file receives (``pyiqa``, plus the application's).
        identity: sections of ``config`` a resumed state must match (e.g. ``network``).

    Attributes:
        step, epoch, epoch_step: optimiser steps done, the current epoch and steps done within it;
            restored by :meth:`resume`, advanced by :meth:`batches`.
    """

    def __init__(self, options: RunOptions, config: Mapping[str, Any], *, root: str | Path = ".",
                 config_file: Optional[str] = None, launcher: str = "none", auto_resume: bool = False,
                 notices: Sequence[str] = (), log_prefix: str = "train", logger_names: Sequence[str] = ("pyiqa",),
                 identity: Sequence[str] = ()):
        self.options, self.config = options, dict(config)
        self.logger = logging.getLogger(f"{__name__}.{options.name}")
        self.identity = tuple(identity)
        self.log_prefix, self.logger_names = log_prefix, tuple(logger_names)
        self.rank, local_rank, self.world_size = 0, 0, 1
        if launcher == "pytorch":
            self.rank, local_rank, self.world_size = dist.init_dist(options.dist_params.backend)
        self.paths = ExperimentPaths(Path(root), options.name)
        check_is_folder_or_absent(self.paths.exp_dir)  # before anything is created
        self.explicit_state = options.path.resume_state
        self.candidates = resume_candidates(self.explicit_state, self.paths, auto_resume)
        self.resume_from: Optional[Path] = None
        if config_file is not None:
            self.logger.info("Options: %s", config_file)  # which file a config name resolved to
        for note in notices:
            self.logger.info(note)
        self.seed = options.manual_seed
        set_random_seed(self.seed + self.rank)
        self.device = select_device(options.num_gpu, local_rank)
        self.step, self.epoch, self.epoch_step = 0, 0, 0
        self.writer: Optional[ScalarWriter] = None
        self.lock: Optional[RunLock] = None
        self._log_file: Optional[logging.Handler] = None

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files, logs and evaluates."""
        return self.rank == 0

    # ------------------------------------------------------------------------------------ resume
    def resume(self, restore: Callable[[Dict[str, Any]], None]) -> bool:
        """Load the training state found at start-up, if any: ``restore(state)`` puts back the trainer's
        own parts (model, optimiser, ...), then the counters and this rank's RNG state are restored.

        With ``--auto_resume`` an unreadable newest state (e.g. a disk that filled up) is skipped with a
        warning for the next newest. A state whose ``identity`` sections (e.g. ``network``) differ from
        this run's options is refused, naming both values. Call it after the model is built (building
        consumes random numbers) and before :meth:`start`. Returns whether it resumed.
        """
        state, path = self._read_state()
        if state is None:
            return False
        self._check_identity(state, path)
        try:
            restore(state)
            self.step, self.epoch, self.epoch_step = state["iter"], state["epoch"], state["epoch_iter"]
            rng = state["rng"].get(self.rank) or state["rng"][0]
        except (KeyError, RuntimeError, ValueError, TypeError, AttributeError) as err:
            raise CheckpointError(f"Training state {path} does not fit this run ({type(err).__name__}: "
                                  f"{err}); it was written by another configuration or program") from err
        set_rng_state(rng)
        self.resume_from = path
        self.logger.info("Resumed from %s at epoch %d, step %d", path, self.epoch, self.step)
        return True

    def _read_state(self) -> Tuple[Optional[Dict[str, Any]], Optional[Path]]:
        explicit = bool(self.explicit_state)
        skipped = []
        for path in self.candidates:
            try:
                return load_checkpoint(path, what="training state"), path
            except CheckpointError as err:
                if explicit or "was refused" in str(err):  # a planted file is never passed over
                    raise
                self.logger.warning("Skipping unreadable training state %s: %s", path, err)
                skipped.append(path)
        if skipped:
            raise CheckpointError(f"No readable training state to resume from in {self.paths.training_states} "
                                  f"(unreadable: {', '.join(p.name for p in skipped)}); start without "
                                  "--auto_resume to begin a new run")
        return None, None

    def _check_identity(self, state: Dict[str, Any], path: Path) -> None:
        """Refuse a state whose model-defining options differ from this run's (it would 'resume' a
        different network, or one already trained past this run's end)."""
        config = state.get("config") if isinstance(state, dict) else None
        if not isinstance(config, dict):
            return
        diffs = []
        for section in self.identity:
            old, new = config.get(section) or {}, self.config.get(section) or {}
            for key in sorted(set(old) | set(new)):
                if old.get(key) != new.get(key):
                    diffs.append(f"{section}.{key}: state {old.get(key)!r}, config {new.get(key)!r}")
        if diffs:
            raise CheckpointError(f"Training state {path} was written with other options than this run's: "
                                  f"{'; '.join(diffs)}. Resume with the original options, or give the new "
                                  "run another 'name'")

    # ------------------------------------------------------------------------------------ start
    def start(self) -> ScalarWriter:
        """Claim the experiment folder once everything is checked: lock the name, archive an old run
        (never a live or resumed one), create the folders, write the log file and the options, and
        open the TensorBoard writer (a resumed run drops the events logged after its state)."""
        archived = None
        if self.is_main:
            self.lock = self.paths.lock().acquire()
            archived = self.paths.prepare(resume=self.resume_from is not None)
            stamp = time.strftime("%Y%m%d_%H%M%S")
            name = self.options.name
            self._log_file = attach_log_file(self.paths.exp_dir / f"{self.log_prefix}_{name}_{stamp}.log",
                                             self.logger_names)
            self.write(lambda f: f.write(yaml.safe_dump(self.config, sort_keys=False).encode()),
                       self.paths.exp_dir / f"{name}_options.yml")
        dist.barrier()
        if archived:
            self.logger.info("Previous run moved to %s", archived)
        enabled = self.options.logger.use_tb_logger and self.is_main
        purge = self.step + 1 if self.resume_from is not None else None
        self.writer = ScalarWriter(self.paths.tb_logger, enabled, purge_step=purge)
        return self.writer

    # ------------------------------------------------------------------------------------ the loop
    def batches(self, loader: Any, total_steps: int, steps_per_epoch: int,
                on_epoch_start: Optional[Callable[[int], None]] = None,
                on_epoch_end: Optional[Callable[[int], None]] = None) -> Iterator[Any]:
        """Yield training batches until ``total_steps``, continuing mid-epoch after a resume.

        The loader's sampler must have ``set_epoch(epoch, skip)`` (:class:`ResumableSampler`): a
        resumed epoch skips the samples the interrupted run already trained on. ``step`` and
        ``epoch_step`` count the batch being yielded; an epoch ends (``on_epoch_end``, then the epoch
        counter moves) when all ``steps_per_epoch`` batches were seen, also when that happens exactly
        at the last step.
        """
        while self.step < total_steps:
            loader.sampler.set_epoch(self.epoch, skip=self.epoch_step * loader.batch_size)
            if on_epoch_start is not None:
                on_epoch_start(self.epoch)
            seen = 0
            for batch in self._guarded(loader):
                seen += 1
                self.step += 1
                self.epoch_step += 1
                yield batch
                if self.step >= total_steps:
                    break
            if self.epoch_step >= steps_per_epoch:
                if on_epoch_end is not None:
                    on_epoch_end(self.epoch)
                self.epoch, self.epoch_step = self.epoch + 1, 0
            elif seen == 0:
                raise DataError(f"The training loader gave no batch in epoch {self.epoch} (expected "
                                f"{steps_per_epoch}); check the dataset and batch size")

    def _guarded(self, loader: Any) -> Iterator[Any]:
        """``loader``'s batches; a failed DataLoader worker (a batch it could not send, e.g. disk or
        shared memory full, or a worker that died) ends the run with one TrainingError, never a hang."""
        def failed(reason: str) -> TrainingError:
            good = next(iter(self.paths.state_files()), None)
            return worker_error(reason, self.step + 1, self.epoch, good)
        return guarded_batches(loader, failed)

    # ------------------------------------------------------------------------------------ saving
    def save_state(self, payload: Callable[[], Dict[str, Any]]) -> Optional[Path]:
        """Atomically write ``training_states/<step>.state`` and keep the newest ``logger.keep_checkpoints``.

        ``payload()`` (called on rank 0 only) gives the trainer's parts; the run adds the counters,
        every rank's RNG state (gathered: a resumed multi-process run continues each stream), the
        config and the package version. Collective: every rank must call it.
        """
        rng = get_rng_state()
        gathered: List[Any] = [rng]
        if self.world_size > 1:
            gathered = [None] * self.world_size
            torch.distributed.all_gather_object(gathered, rng)
        path = None
        if self.is_main:
            state = {**payload(), "iter": self.step, "epoch": self.epoch, "epoch_iter": self.epoch_step,
                     "rng": dict(enumerate(gathered)), "config": self.config, "version": __version__}
            path = self.paths.training_states / f"{self.step}.state"
            self.save(state, path)
            keep = self.options.logger.keep_checkpoints
            states = sorted(self.paths.training_states.glob("*.state"), key=lambda p: int(p.stem))
            for old in states[:-keep]:
                old.unlink()
            self.logger.info("Saved training state %s", path)
        dist.barrier()
        return path

    def save(self, obj: Any, path: Path) -> None:
        """``torch.save`` atomically; a failed write (disk full, read-only) is one clear error."""
        self.write(lambda f: torch.save(obj, f), path)

    def write(self, write: Callable[[Any], None], path: Path) -> None:
        """:func:`atomic_write` with an OutputError naming the file and the last good state on failure."""
        try:
            atomic_write(path, write)
        except (OSError, RuntimeError) as err:
            cause = _os_error(err)  # torch.save reports a failed write as a RuntimeError around it
            if cause is None:
                raise
            good = next((p for p in self.paths.state_files() if p != path), None)
            raise OutputError(f"Cannot write {path}: {cause.strerror or cause}. Nothing was overwritten: the "
                              f"last complete training state is {good or 'none yet'}; free space or fix the "
                              "folder, then continue with --auto_resume") from err

    def close(self) -> None:
        """Close the TensorBoard writer, release the name's lock and detach the run's log file."""
        if self.writer is not None:
            self.writer.close()
        if self.lock is not None:
            self.lock.release()
        if self._log_file is not None:
            detach_log_file(self._log_file, self.logger_names)
            self._log_file = None


def _os_error(err: BaseException) -> Optional[OSError]:
    """The OSError behind ``err`` (itself, or in its cause/context chain), if any."""
    seen = 0
    while err is not None and seen < 10:
        if isinstance(err, OSError):
            return err
        if is_write_failure(err):  # torch's zip writer: a failed write without an OSError behind it
            return OSError(errno.EIO, f"the write failed ({str(err).splitlines()[0].strip()})")
        err, seen = err.__cause__ or err.__context__, seen + 1
    return None


def run_main(trainer_factory: Callable[[], Any], args: argparse.Namespace,
             logger_names: Sequence[str] = ("pyiqa",)) -> Any:
    """The entry point's part: configure logging (console now; the file once the run's folder exists,
    records kept until then; ranks > 0 only report errors), then build and run a trainer, always
    tearing the process group down (also on errors)."""
    rank = int(os.environ.get("RANK", "0")) if args.launcher == "pytorch" else 0
    setup_logging(None, rank, logger_names=logger_names, buffer=True)
    try:
        return trainer_factory().run()
    finally:
        release_locks()
        dist.cleanup()
