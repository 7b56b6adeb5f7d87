"""``python train.py -opt X.yml``: train an IQA network from one YAML, with validation, TensorBoard,
atomic checkpoints and exact resume. ``main(argv)`` is the whole programme so tests run it for real."""
from __future__ import annotations

import argparse
import logging
import math
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

from .data import build_dataset, collate_images, seed_worker
from .data.resumable_sampler import ResumableSampler
from .models import GeneralIQAModel
from .utils import dist
from .utils.checkpoint import atomic_save, load_checkpoint
from .utils.errors import ConfigError, PyiqaError
from .utils.experiment import ExperimentPaths, resume_state_path
from .utils.entry import run_cli
from .utils.logger import ScalarWriter, setup_logging
from .utils.options import dataset_phase, dump_options, parse_options
from .utils.rng import get_rng_state, set_random_seed, set_rng_state

logger = logging.getLogger("pyiqa.train")

KEEP_STATES = 2  # training states kept on disk (the newest is always complete: writes are atomic)


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("-opt", "--opt", required=True, help="experiment YAML")
    p.add_argument("--launcher", choices=["none", "pytorch"], default="none",
                   help="'pytorch' under torchrun for DDP")
    p.add_argument("--auto_resume", action="store_true", help="continue from the newest training state")
    p.add_argument("--force_yml", nargs="+", default=[], metavar="KEY.SUB=VALUE",
                   help="override options, e.g. train.total_iter=100 network.backbone=random")
    p.add_argument("--root", default=".", help="folder that receives experiments/ (default: cwd)")
    return p.parse_args(argv)


def select_device(num_gpu: Any, local_rank: int) -> torch.device:
    """``num_gpu: 0`` is CPU; ``num_gpu >= 1`` (or 'auto') without CUDA falls back to CPU, loudly."""
    if num_gpu in (0, "0", None, False):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        if num_gpu != "auto":
            logger.warning("num_gpu: %s but CUDA is not available: training on CPU", num_gpu)
        return torch.device("cpu")
    return torch.device("cuda", local_rank)


def build_train_loader(dataset, opt: Dict[str, Any], seed: int, rank: int, world_size: int):
    sampler = ResumableSampler(len(dataset), shuffle=opt.get("use_shuffle", True), seed=seed, rank=rank,
                               world_size=world_size)
    batch = int(opt.get("batch_size_per_gpu", 1))
    if batch > sampler.per_rank:
        raise ConfigError(f"datasets.train.batch_size_per_gpu={batch} is larger than the {sampler.per_rank} "
                          f"training images per process; lower the batch size")
    workers = int(opt.get("num_worker_per_gpu", 0))
    g = torch.Generator().manual_seed(seed + rank)  # reseeded per epoch by the trainer
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch, sampler=sampler, num_workers=workers, drop_last=True,
        pin_memory=torch.cuda.is_available(), worker_init_fn=seed_worker, generator=g,
        persistent_workers=False)
    return loader, sampler, g


def build_eval_loader(dataset, opt: Dict[str, Any]):
    return torch.utils.data.DataLoader(
        dataset, batch_size=int(opt.get("batch_size_per_gpu", 1)), shuffle=False,
        num_workers=int(opt.get("num_worker_per_gpu", 0)), collate_fn=collate_images)


def lower_is_better(metric_opt: Dict[str, Any]) -> bool:
    return "rmse" in str(metric_opt.get("type", "")).lower()


class Trainer:
    """The run: datasets, model, loop, validation and checkpoints, in the order they happen."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        opt, notices = parse_options(args.opt, args.force_yml, is_train=True)
        self.opt = opt
        self.rank, local_rank, self.world_size = 0, 0, 1
        if args.launcher == "pytorch":
            backend = (opt.get("dist_params") or {}).get("backend")
            self.rank, local_rank, self.world_size = dist.init_dist(backend)
        self.paths = ExperimentPaths(Path(args.root), opt["name"])
        resume_from = resume_state_path(opt, self.paths, args.auto_resume)
        if self.rank == 0:
            archived = self.paths.prepare(resume=resume_from is not None)
        dist.barrier()
        stamp = time.strftime("%Y%m%d_%H%M%S")
        setup_logging(self.paths.log_file(stamp), self.rank)
        if self.rank == 0 and archived:
            logger.info("Previous run moved to %s", archived)
        for note in notices:
            logger.info(note)
        if self.rank == 0:
            dump_options(opt, self.paths.exp_dir / f"{opt['name']}_options.yml")
        self.seed = int(opt.get("manual_seed", 0) if opt.get("manual_seed") is not None else 0)
        set_random_seed(self.seed + self.rank)
        self.device = select_device(opt.get("num_gpu", "auto"), local_rank)
        logger.info("Run '%s' on %s, world size %d, seed %d", opt["name"], self.device, self.world_size,
                    self.seed)
        self._build_data()
        self.model = GeneralIQAModel(opt, self.device, is_train=True, world_size=self.world_size)
        self.current_iter, self.epoch, self.epoch_iter = 0, 0, 0
        self.best: Dict[str, Dict[str, float]] = {}
        if resume_from is not None:
            self._resume(resume_from)
        log_opt = opt.get("logger") or {}
        self.writer = ScalarWriter(self.paths.tb_logger, log_opt.get("use_tb_logger", True) and self.rank == 0,
                                   purge_step=self.current_iter + 1 if resume_from else None)

    # ------------------------------------------------------------------------------------ set-up
    def _build_data(self) -> None:
        opt = self.opt
        self.eval_sets = []
        for key, d_opt in opt["datasets"].items():
            phase = dataset_phase(key)
            ds = build_dataset(d_opt, phase, where=f"datasets.{key}")  # logs its own description
            if phase == "train":
                self.train_set, self.train_opt = ds, d_opt
            else:
                self.eval_sets.append((key, phase, ds, build_eval_loader(ds, d_opt)))
        self.train_loader, self.sampler, self.loader_generator = build_train_loader(self.train_set, self.train_opt, self.seed,
                                                             self.rank, self.world_size)
        self.iters_per_epoch = len(self.train_loader)
        tr = opt["train"]
        self.epoch_based = tr.get("total_epoch") is not None
        if self.epoch_based:
            self.total_epochs = int(tr["total_epoch"])
            self.total_iter = self.total_epochs * self.iters_per_epoch
            if tr.get("total_iter") is not None and int(tr["total_iter"]) != self.total_iter:
                logger.info("train.total_epoch=%d sets the length: %d iterations (train.total_iter=%s ignored)",
                            self.total_epochs, self.total_iter, tr["total_iter"])
        else:
            self.total_iter = int(tr["total_iter"])
            self.total_epochs = math.ceil(self.total_iter / self.iters_per_epoch)
        logger.info("%d iterations per epoch, %d epochs, %d iterations; scheduler steps per %s",
                    self.iters_per_epoch, self.total_epochs, self.total_iter,
                    "epoch" if self.epoch_based else "iteration")

    def _resume(self, path: Path) -> None:
        state = load_checkpoint(path)
        try:
            self.model.load_training_state(state)
            self.current_iter, self.epoch, self.epoch_iter = state["iter"], state["epoch"], state["epoch_iter"]
            self.best = state["best"]
        except KeyError as e:
            raise PyiqaError(f"Training state {path} lacks {e}; it was not written by this trainer") from e
        rng = state["rng"].get(self.rank) or state["rng"][0]
        set_rng_state(rng)
        logger.info("Resumed from %s at epoch %d, iteration %d", path, self.epoch, self.current_iter)

    # ------------------------------------------------------------------------------------ loop
    def run(self) -> Dict[str, Any]:
        opt, log_opt = self.opt, self.opt.get("logger") or {}
        val_opt = opt.get("val") or {}
        print_freq = int(log_opt.get("print_freq", 100))
        latest_freq = int(log_opt.get("save_latest_freq", log_opt.get("save_checkpoint_freq", 1000)))
        ckpt_freq = log_opt.get("save_checkpoint_freq")
        val_freq = int(val_opt.get("val_freq", self.iters_per_epoch))
        logger.info("Start training from epoch %d, iteration %d", self.epoch, self.current_iter)
        tic = time.time()
        while self.current_iter < self.total_iter:
            self.sampler.set_epoch(self.epoch, skip=self.epoch_iter * self.train_loader.batch_size)
            # worker augmentation seeds depend only on (seed, rank, epoch), so a resumed epoch reuses them
            self.loader_generator.manual_seed(self.seed + self.rank + 100_003 * self.epoch)
            for batch in self.train_loader:
                self.current_iter += 1
                self.epoch_iter += 1
                losses = self.model.train_step(batch, self.current_iter, step_scheduler=not self.epoch_based)
                if self.current_iter % print_freq == 0 or self.current_iter == 1:
                    self._log_train(losses, (time.time() - tic) / max(self.current_iter, 1))
                due_val = self.current_iter % val_freq == 0
                if due_val:
                    self.validate()
                if self.current_iter % latest_freq == 0:
                    self.save(latest=True)
                if ckpt_freq and self.current_iter % int(float(ckpt_freq)) == 0:
                    self.save_network(f"net_{self.current_iter}.pth")
                if self.current_iter >= self.total_iter:
                    break
            else:
                self._end_epoch()
                continue
            if self.epoch_iter == self.iters_per_epoch:
                self._end_epoch()
            break
        if self.current_iter % val_freq != 0:
            self.validate()
        self.save(latest=True)
        results = self.test()
        logger.info("End of training: %d iterations in %.1f s", self.current_iter, time.time() - tic)
        self.writer.close()
        return results

    def _end_epoch(self) -> None:
        if self.epoch_based:
            self.model.scheduler.step()
        self.epoch += 1
        self.epoch_iter = 0

    def _log_train(self, losses: Dict[str, float], sec_per_iter: float) -> None:
        lr = self.model.current_lr()
        msg = "  ".join(f"{k}: {v:.4e}" for k, v in losses.items())
        logger.info("[epoch %3d, iter %7d/%d, lr %.3e] %s  (%.2f s/iter)", self.epoch, self.current_iter,
                    self.total_iter, lr, msg, sec_per_iter)
        self.writer.add_scalars({f"losses/{k}": v for k, v in losses.items()}, self.current_iter)
        self.writer.add_scalars({"lr": lr, "time/sec_per_iter": sec_per_iter}, self.current_iter)

    # ------------------------------------------------------------------------------------ evaluation
    def validate(self) -> None:
        """Evaluate every ``val*`` set on rank 0; keep the best network by ``val.key_metric``."""
        val_opt = self.opt.get("val") or {}
        if self.rank == 0:
            metrics_opt = val_opt["metrics"]
            key = val_opt.get("key_metric") or next(iter(metrics_opt))
            if key not in metrics_opt:
                raise ConfigError(f"val.key_metric '{key}' is not one of val.metrics: {list(metrics_opt)}")
            for name, phase, ds, loader in self.eval_sets:
                if phase != "val":
                    continue
                metrics, _ = self.model.evaluate(loader, metrics_opt, desc=f"val {name}",
                                                 pbar=val_opt.get("pbar", False))
                self.writer.add_scalars(metrics, self.current_iter, prefix=f"metrics/{name}/")
                record = self.best.get(name)
                value = metrics[key]
                better = record is None or not math.isfinite(record["value"]) or (
                    value < record["value"] if lower_is_better(metrics_opt[key]) else value > record["value"])
                if better and math.isfinite(value):
                    self.best[name] = {"metric": key, "value": value, "iter": self.current_iter}
                    self.save_network("net_best.pth" if len(self.eval_sets) == 1 or name == "val"
                                      else f"net_best_{name}.pth")
                text = "  ".join(f"{k}: {v:.4f}" for k, v in metrics.items())
                rec = self.best.get(name)
                logger.info("Validation %s @ iter %d: %s  (best %s %.4f @ iter %s)", name, self.current_iter,
                            text, key, rec["value"] if rec else float("nan"), rec["iter"] if rec else "-")
            self.writer.flush()
        dist.barrier()

    def test(self) -> Dict[str, Dict[str, float]]:
        """Evaluate the final network on every ``test*`` set (rank 0); returns {set: metrics}."""
        results = {}
        val_opt = self.opt.get("val") or {}
        if self.rank == 0:
            for name, phase, ds, loader in self.eval_sets:
                if phase != "test":
                    continue
                metrics, _ = self.model.evaluate(loader, val_opt["metrics"], desc=f"test {name}",
                                                 pbar=val_opt.get("pbar", False))
                results[name] = metrics
                self.writer.add_scalars(metrics, self.current_iter, prefix=f"test/{name}/")
                logger.info("Test %s (final network, %d images): %s", name, len(ds),
                            "  ".join(f"{k}: {v:.4f}" for k, v in metrics.items()))
        dist.barrier()
        return results

    # ------------------------------------------------------------------------------------ saving
    def save_network(self, filename: str) -> None:
        if self.rank == 0:
            atomic_save(self.model.network_checkpoint(self.current_iter), self.paths.models / filename)

    def save(self, latest: bool) -> None:
        """net_latest.pth and the training state of this iteration (all ranks' RNG states)."""
        rng = get_rng_state()
        gathered = [None] * self.world_size
        if self.world_size > 1:
            torch.distributed.all_gather_object(gathered, rng)
        else:
            gathered = [rng]
        if self.rank == 0:
            self.save_network("net_latest.pth")
            state = {**self.model.training_state(), "iter": self.current_iter, "epoch": self.epoch,
                     "epoch_iter": self.epoch_iter, "best": self.best,
                     "rng": {r: s for r, s in enumerate(gathered)}, "config": self.opt}
            atomic_save(state, self.paths.training_states / f"{self.current_iter}.state")
            states = sorted(self.paths.training_states.glob("*.state"), key=lambda p: int(p.stem))
            for old in states[:-KEEP_STATES]:
                old.unlink()
        dist.barrier()


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    args = parse_args(argv)
    try:
        trainer = Trainer(args)
        return trainer.run()
    finally:
        dist.cleanup()


def cli() -> None:
    run_cli(main)


if __name__ == "__main__":
    cli()
