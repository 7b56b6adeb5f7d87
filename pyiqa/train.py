"""``pyiqa-train -opt X.yml``: train an IQA network from one YAML, with validation, TensorBoard,
atomic checkpoints and exact resume. ``main(argv)`` is the whole programme so tests run it for real.

The run machinery (folders, logging, seeding, devices, training states, resume) is
:class:`pyiqa.engine.run.Run`, shared with ``train_clip``; this module holds only what is particular
to adapter training: its data, its step and its validation.
"""
from __future__ import annotations

import argparse
import dataclasses
import logging
import math
import time
from typing import Any, Dict, List, Optional, Tuple

import torch

from .data import build_dataloader, build_dataset
from .data.failures import FailureTracker
from .engine.options import parse_options
from .engine.run import Run, parse_run_args, run_main
from .metrics import lower_is_better
from .models import IQAModel
from .models.embedding_feed import EmbeddingFeed
from .utils import dist
from .utils.entry import run_cli
from .utils.errors import TrainingError
from .utils.options import dataset_phase
from .utils.run_results import RunResults
from .utils.threads import configure_threads

logger = logging.getLogger("pyiqa.train")


@dataclasses.dataclass(frozen=True)
class EvalSet:
    """A ``datasets.val*`` or ``datasets.test*`` section, built: its key, phase, dataset and loader (its
    image loader, then the embedding feed that :meth:`Trainer._feeds` makes of it)."""

    name: str
    phase: str
    dataset: Any
    loader: Any


class Trainer:
    """The run: datasets, model, loop, validation and checkpoints, in the order they happen."""

    def __init__(self, args: argparse.Namespace):
        config, notices = parse_options(args.opt, args.force_yml, is_train=True)
        self.config = config
        self.runtime = run = Run(config, config.to_dict(), root=args.root, config_file=args.opt,
                                 launcher=args.launcher, auto_resume=args.auto_resume, notices=notices,
                                 log_prefix="train", identity=("network",))
        self.rank, self.world_size, self.device = run.rank, run.world_size, run.device
        logger.info("Run '%s' on %s, world size %d, seed %d", config.name, self.device, self.world_size,
                    run.seed)
        self._build_data()
        # intra-op threads: the cores the training loader's workers leave free (no oversubscription)
        configure_threads(self.train_images.num_workers)
        self.model = IQAModel(config, self.device, is_train=True, world_size=self.world_size)
        self.best: Dict[str, Dict[str, float]] = {}
        self.untrained: Dict[str, Dict[str, float]] = {}  # val.val_at_start: the test sets before training
        self.saved_at: Optional[tuple] = None  # (step, epoch) of the training state written last
        run.resume(self._restore)
        self.writer = run.start()  # everything checked: only now the experiment folder is created
        self.cached = config.train.feature_cache
        self.cache_seconds = 0.0
        self.train_loader, self.eval_sets = self._feeds()

    # ------------------------------------------------------------------------------------ set-up
    def _build_data(self) -> None:
        config, run = self.config, self.runtime
        self.eval_sets: List[EvalSet] = []
        for key, d_opt in config.datasets.items():
            phase = dataset_phase(key)
            where, loading = f"datasets.{key}", config.loader(key)
            ds = build_dataset(d_opt, phase, where=where)  # logs its own description
            if phase == "train":
                self.train_set = ds  # reseeded every epoch: its augmentations are drawn from (seed, epoch, index)
                self.train_images = build_dataloader(ds, loading, "train", seed=run.seed, rank=run.rank,
                                                     world_size=run.world_size, where=where, device=run.device)
                self.failures = FailureTracker(len(ds), loading.max_failed_fraction,
                                               report=run.paths.exp_dir / "failed_images.txt")
            else:
                self.eval_sets.append(EvalSet(key, phase, ds, build_dataloader(ds, loading, phase, where=where,
                                                                               device=run.device)))
        val_sets = [s.name for s in self.val_sets]
        if val_sets and config.val is None:  # `val: null` (or no section): nothing says how to validate
            logger.warning("'val' is missing or null: training WITHOUT validation; datasets.%s is not used (no "
                           "net_best.pth). Add 'val: {metrics: {srcc: {type: calculate_srcc}}}' to validate",
                           ", datasets.".join(val_sets))
            self.eval_sets = self.test_sets
        elif not self.has_val:
            logger.warning("No datasets.val* section: training without validation (no net_best.pth; "
                           "net_latest.pth and the test sets are written as usual)")
        self.iters_per_epoch = len(self.train_images)
        tr = config.train
        self.epoch_based = tr.total_epoch is not None
        if self.epoch_based:
            self.total_epochs = tr.total_epoch
            self.total_iter = self.total_epochs * self.iters_per_epoch
            if tr.total_iter is not None and tr.total_iter != self.total_iter:
                logger.info("train.total_epoch=%d sets the length: %d iterations (train.total_iter=%s ignored)",
                            self.total_epochs, self.total_iter, tr.total_iter)
        else:
            self.total_iter = tr.total_iter
            self.total_epochs = math.ceil(self.total_iter / self.iters_per_epoch)
        logger.info("%d iterations per epoch, %d epochs, %d iterations; scheduler steps per %s",
                    self.iters_per_epoch, self.total_epochs, self.total_iter,
                    "epoch" if self.epoch_based else "iteration")

    def _feeds(self) -> Tuple[EmbeddingFeed, List[EvalSet]]:
        """What the score head is fed, for training and for every evaluation set: the one place where
        the standard loop and the cached one (``train.feature_cache``) part. Standard: the frozen tower
        embeds each batch's images as they arrive (fresh random crops every step). Cached: stored
        embeddings, built first where missing (K fixed views per training image, the test crops of every
        evaluation image)."""
        if self.cached:
            return self._cached_feeds()
        net, device = self.model.net, self.device
        logger.info("Training loop: standard (the frozen image tower runs on fresh crops every step)")
        return (EmbeddingFeed.live(self.train_images, net, device, train=True),
                [dataclasses.replace(s, loader=EmbeddingFeed.live(s.loader, net, device)) for s in self.eval_sets])

    def _cached_feeds(self) -> Tuple[EmbeddingFeed, List[EvalSet]]:
        """The feature cache's feeds: every image loader's stored counterpart (same sampler, batch size,
        items and order)."""
        from .data.cached_dataset import CachedTrainLoader, cached_crops_loader
        from .data.feature_cache import FeatureCache, cache_root
        run, tr = self.runtime, self.config.train
        views = tr.views_per_image  # resolved with the config
        cache = FeatureCache(cache_root(tr.feature_cache_dir, run.paths.root), self.model.net, self.device,
                             workers=self.train_images.num_workers,
                             batch_crops=256 if self.device.type == "cuda" else 32)
        tic = time.time()
        table = cache.prepare(self.train_set, "views", views, seed=run.seed)
        train = EmbeddingFeed.stored(CachedTrainLoader(self.train_images, table, run.device))
        eval_sets = []
        for s in self.eval_sets:
            crops = cached_crops_loader(s.loader, cache.prepare(s.dataset, "crops"))
            eval_sets.append(dataclasses.replace(s, loader=EmbeddingFeed.stored(crops)))
        self.cache_seconds = time.time() - tic
        logger.info("Training loop: cached features (%d fixed views per training image, cached test crops; "
                    "frozen tower in %s); cache ready in %.1f s", views, self.model.precision, self.cache_seconds)
        return train, eval_sets

    def _restore(self, state: Dict[str, Any]) -> None:
        self.model.load_training_state(state)
        self.best = state["best"]
        self.untrained = state.get("untrained", {})

    # ------------------------------------------------------------------------------------ loop
    def run(self) -> Dict[str, Any]:
        run, log, val = self.runtime, self.config.logger, self.config.val
        val_freq = val.val_freq if val is not None and val.val_freq is not None else self.iters_per_epoch
        logger.info("Start training from epoch %d, iteration %d", run.epoch, run.step)
        tic = time.time()
        if run.step == 0 and val is not None and val.val_at_start:  # the baseline training is measured against
            if self.has_val:
                self.validate()
            self.untrained = self.test(prefix="test_untrained", label="untrained network")
        for batch in run.batches(
                self.train_loader, self.total_iter, self.iters_per_epoch,
                # each sample's augmentation is drawn from (seed, epoch, index): a resumed epoch redraws it
                on_epoch_start=lambda e: self.train_set.reseed(run.seed, e),
                on_epoch_end=lambda e: self.model.scheduler.step() if self.epoch_based else None):
            it = run.step
            losses = self._train_step(batch, it)
            if it % log.print_freq == 0 or it == 1:
                self._log_train(losses, (time.time() - tic) / max(it, 1))
            if self.has_val and it % val_freq == 0:
                self.validate()
            if it % log.save_latest_freq == 0:
                self.save()
            if log.save_checkpoint_freq and it % log.save_checkpoint_freq == 0:
                self.save_network(f"net_{it}.pth")
        if self.has_val and run.step % val_freq != 0:
            self.validate()
        if self.saved_at != (run.step, run.epoch):  # not saved already, with nothing new since (a
            self.save()                              # validation or an epoch end changes the state)
        results = self.test()
        best_results = self.test_best_network()
        self.write_results(results, best_results, time.time() - tic)
        logger.info("End of training: %d iterations in %.1f s", run.step, time.time() - tic)
        run.close()
        return results

    @property
    def has_val(self) -> bool:
        return bool(self.val_sets)

    @property
    def val_sets(self) -> List[EvalSet]:
        return [s for s in self.eval_sets if s.phase == "val"]

    @property
    def test_sets(self) -> List[EvalSet]:
        return [s for s in self.eval_sets if s.phase == "test"]

    def _train_step(self, batch: Dict[str, Any], it: int) -> Dict[str, float]:
        """One optimisation step; unreadable images of the batch are counted (and were replaced)."""
        self.failures.record(batch.get("failed", []))
        if self.world_size == 1:
            self.failures.check()
        try:
            return self.model.train_step(batch, it, step_scheduler=not self.epoch_based)
        except FloatingPointError as err:
            good = next(iter(self.runtime.paths.state_files()), None)
            raise TrainingError(
                f"The loss is not finite at iteration {it} (epoch {self.runtime.epoch}, learning rate "
                f"{self.model.optimizer.param_groups[0]['lr']:.3e}): {err}. Lower train.optim.lr or check the MOS values; the last "
                f"good training state is {good or 'none (none saved yet)'}") from err

    def _log_train(self, losses: Dict[str, float], sec_per_iter: float) -> None:
        self.failures.sync(self.world_size)
        if self.world_size > 1:  # the loss of the global batch: the mean over the ranks
            values = torch.tensor(list(losses.values()), dtype=torch.float64, device=self.device)
            torch.distributed.all_reduce(values)
            losses = dict(zip(losses, (values / self.world_size).tolist()))
        lr, run = self.model.current_lr(), self.runtime
        msg = "  ".join(f"{k}: {v:.4e}" for k, v in losses.items())
        logger.info("[epoch %3d, iter %7d/%d, lr %.3e] %s  (%.2f s/iter)", run.epoch, run.step,
                    self.total_iter, lr, msg, sec_per_iter)
        self.writer.add_scalars({f"losses/{k}": v for k, v in losses.items()}, run.step)
        self.writer.add_scalars({"lr": lr, "time/sec_per_iter": sec_per_iter}, run.step)

    # ------------------------------------------------------------------------------------ evaluation
    def validate(self) -> None:
        """Evaluate every ``val*`` set on rank 0; keep the best network by ``val.key_metric``."""
        self.saved_at = None  # the best record may change: the state must be written again
        val = self.config.val
        if self.rank == 0:
            metrics_opt, key = val.metrics, val.key_metric  # resolved: the first metric when not set
            for val_set in self.val_sets:
                name = val_set.name
                metrics, _ = self.model.evaluate(val_set.loader, metrics_opt, desc=f"val {name}", pbar=val.pbar)
                self.writer.add_scalars(metrics, self.runtime.step, prefix=f"metrics/{name}/")
                record = self.best.get(name)
                value = metrics[key]
                better = record is None or not math.isfinite(record["value"]) or (
                    value < record["value"] if lower_is_better(metrics_opt[key]) else value > record["value"])
                if better and math.isfinite(value):
                    self.best[name] = {"metric": key, "value": value, "iter": self.runtime.step,
                                       "metrics": dict(metrics)}
                    self.save_network("net_best.pth" if len(self.eval_sets) == 1 or name == "val"
                                      else f"net_best_{name}.pth")
                text = "  ".join(f"{k}: {v:.4f}" for k, v in metrics.items())
                rec = self.best.get(name)
                logger.info("Validation %s @ iter %d: %s  (best %s %.4f @ iter %s)", name, self.runtime.step,
                            text, key, rec["value"] if rec else float("nan"), rec["iter"] if rec else "-")
            self.writer.flush()
        dist.barrier()

    def test(self, prefix: str = "test", label: str = "final network") -> Dict[str, Dict[str, float]]:
        """Evaluate the network on every ``test*`` set (rank 0); returns {set: metrics}."""
        results = {}
        pbar = self.config.val is not None and self.config.val.pbar
        if self.rank == 0:
            for test_set in self.test_sets:
                name = test_set.name
                metrics, _ = self.model.evaluate(test_set.loader, self.config.metrics, desc=f"test {name}",
                                                 pbar=pbar)
                results[name] = metrics
                self.writer.add_scalars(metrics, self.runtime.step, prefix=f"{prefix}/{name}/")
                logger.info("Test %s (%s, %d images): %s", name, label, len(test_set.dataset),
                            "  ".join(f"{k}: {v:.4f}" for k, v in metrics.items()))
        dist.barrier()
        return results

    def test_best_network(self) -> Dict[str, Dict[str, float]]:
        """The honest protocol's numbers: ``net_best.pth`` (chosen on the ``val`` set) on every ``test*``
        set, once. Empty without validation or test sets; the final network is put back afterwards."""
        path = self.runtime.paths.models / "net_best.pth"
        if not (self.has_val and self.test_sets):
            return {}
        if not path.is_file():  # every rank sees the same folder: all skip or none does
            return {}
        final = {k: v.clone() for k, v in self.model.net.trainable_state_dict().items()}
        self.model.load_network(str(path))
        results = self.test(prefix="test_best", label="best network")  # rank 0 evaluates; a barrier
        self.model.net.load_trainable_state_dict(final)
        return results

    def write_results(self, final: Dict[str, Dict[str, float]], best_network: Dict[str, Dict[str, float]],
                      seconds: float) -> None:
        """``results.json`` in the experiment folder (:class:`~pyiqa.utils.run_results.RunResults`): what a
        split runner or a results table reads."""
        if self.rank != 0:
            return
        record = RunResults(name=self.config.name, iterations=self.runtime.step, seconds=round(seconds, 3),
                            feature_cache=self.cached, cache_seconds=round(self.cache_seconds, 3),
                            best=self.best, test=final, test_best_network=best_network,
                            test_untrained=self.untrained)
        self.runtime.write(lambda f: f.write(record.to_json()), self.runtime.paths.exp_dir / "results.json")

    # ------------------------------------------------------------------------------------ saving
    def save_network(self, filename: str) -> None:
        if self.rank == 0:
            self.runtime.save(self.model.network_checkpoint(self.runtime.step), self.runtime.paths.models / filename)

    def save(self) -> None:
        """net_latest.pth and the training state of this iteration (all ranks' RNG states)."""
        self.save_network("net_latest.pth")
        self.runtime.save_state(lambda: {**self.model.training_state(), "best": self.best,
                                         "untrained": self.untrained})
        self.saved_at = (self.runtime.step, self.runtime.epoch)


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    args = parse_run_args(argv, __doc__.splitlines()[0], "train.total_iter=100 network.backbone=random")
    return run_main(lambda: Trainer(args), args)


def cli() -> None:
    run_cli(main)


if __name__ == "__main__":
    cli()
