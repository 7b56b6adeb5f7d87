"""The contrastive pre-training of UniQA's CLIP: ``pyiqa-train-clip -opt X.yml`` (or an installed config by name).

One process (GPU or CPU), or ``torchrun --nproc_per_node=N -m train_clip.train -opt X.yml --launcher
pytorch`` (NCCL on GPUs, gloo on CPU; multi-node through torchrun's rendezvous flags). Writes
``experiments/<name>/``: the log and resolved options, ``tb_logger/``, ``training_states/<step>.state``
(``--auto_resume`` continues from the newest) and ``uniqa_backbone.pt``, the plain OpenAI-format CLIP
state dict that the adapter trainer's ``network.backbone`` loads. ``main(argv)`` is the whole programme.

The run machinery (folders, logging, seeding, devices, training states, resume) is
:class:`pyiqa.engine.run.Run`, shared with the adapter trainer; this module holds the contrastive
step, its data and its evaluation.
"""
from __future__ import annotations

import argparse
import logging
import resource
import time
import warnings
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch
from torch.utils.data import DataLoader

from pyiqa.data import seed_worker
from pyiqa.data.resumable_sampler import ResumableSampler
from pyiqa.engine.run import Run, parse_run_args, run_main
from pyiqa.utils import dist
from pyiqa.utils.entry import run_cli
from pyiqa.utils.errors import ConfigError
from pyiqa.utils.precision import resolve_precision
from pyiqa.utils.threads import configure_threads
from pyiqa.data.failures import FailureTracker
from train_clip.data import CaptionDataset, build_samples, clip_transform, collate, drop_missing
from train_clip.evaluation import Evaluator
from train_clip.export import check_exportable, export_backbone
from train_clip.model import build_model, count
from train_clip.optim import DEFAULTS, build_optimizer, lr_at, set_lr
from train_clip.options import parse_options, per_rank_batch
from train_clip.step import ContrastiveStep, build_loss, split_micro

logger = logging.getLogger(__name__)
LOGGER_NAMES = ("pyiqa", "train_clip")  # the logger trees of this application


class Trainer:
    """Set-up in the order things are needed, then ``run``: the loop, evaluation, checkpoints, export."""

    def __init__(self, args: argparse.Namespace):
        opt, options = parse_options(args.opt, args.force_yml)
        self.opt = opt
        self.runtime = run = Run(options, opt, root=args.root, config_file=args.opt, launcher=args.launcher,
                                 auto_resume=args.auto_resume, log_prefix="train_clip", logger_names=LOGGER_NAMES,
                                 identity=("model",))
        self.rank, self.world_size, self.device = run.rank, run.world_size, run.device
        self.seed = run.seed
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.precision = resolve_precision(options.precision, self.device)
        logger.info("Run '%s' on %s, world size %d, precision %s, seed %d", opt["name"], self.device,
                    self.world_size, self.precision, self.seed)

        self.model = build_model(opt["model"], self.seed)
        if opt["model"].get("backbone") is None:
            check_exportable(self.model)  # fail now, not after the run, if UniQA could not load it
        self.model.to(self.device)
        logger.info("CLIP: %s, image size %d", count(self.model), self.model.visual.image_size[0])
        self._build_data()
        configure_threads(self.loader.num_workers)  # the cores the loader's workers leave free
        tr = opt["train"]
        self.optimizer = build_optimizer(self.model, tr)
        self.net = self.model
        if self.world_size > 1:
            self.net = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                broadcast_buffers=False)  # the only buffer is CLIP's constant causal mask
        loss = build_loss(bool(tr.get("local_loss", True)), bool(tr.get("gather_with_grad", True)),
                          self.rank, self.world_size)
        self.runner = ContrastiveStep(self.net, self.model, loss, self.optimizer, self.precision, self.device,
                                      tr.get("grad_clip_norm"))
        ev = opt.get("eval") or {}
        self.evaluator = Evaluator(ev, self.model.visual.image_size[0], self.model.context_length, self.device,
                                   self.runner.autocast) if self.rank == 0 else None
        run.resume(self._restore)
        self.writer = run.start()  # everything checked: only now the experiment folder is created

    # ------------------------------------------------------------------------------------ set-up
    def _build_data(self) -> None:
        data, tr = self.opt["data"], self.opt["train"]
        samples = build_samples(data["train"], "data.train")
        self.failures = FailureTracker(len(samples), float(data.get("max_failed_fraction", 0.01)),
                                       report=self.runtime.paths.exp_dir / "failed_images.txt")
        samples = drop_missing(samples, self.failures)
        self.accum = int(tr.get("accum_steps", 1))
        self.global_batch = int(tr["batch_size"])
        if self.global_batch > len(samples):
            raise ConfigError(f"train.batch_size={self.global_batch} is larger than the {len(samples)} "
                              f"training image-caption entries; lower the batch size or add data")
        self.batch = per_rank_batch(self.global_batch, self.world_size, self.accum)
        size = self.model.visual.image_size[0]
        self.dataset = CaptionDataset(samples, clip_transform(size, True, data.get("transform")),
                                      self.model.context_length, seed=self.seed, train=True)
        self.sampler = ResumableSampler(len(self.dataset), shuffle=True, seed=self.seed, rank=self.rank,
                                        world_size=self.world_size)
        workers = int(data.get("num_workers", 0))
        self.loader = DataLoader(self.dataset, batch_size=self.batch, sampler=self.sampler, drop_last=True,
                                 num_workers=workers, collate_fn=collate, worker_init_fn=seed_worker,
                                 pin_memory=self.device.type == "cuda", persistent_workers=False,
                                 # workers' base seed from here, not the global RNG a resume restores
                                 generator=torch.Generator().manual_seed(self.seed + self.rank))
        self.steps_per_epoch = self.sampler.per_rank // self.batch
        self.total_steps = int(tr["total_steps"]) if tr.get("total_steps") else int(tr["epochs"]) * self.steps_per_epoch
        self.warmup = int(tr.get("warmup_steps", DEFAULTS["warmup_steps"]))
        if self.warmup > self.total_steps:  # a shortened smoke run: allowed, but said
            logger.warning("'train.warmup_steps' is %d, longer than the run (%d steps): the learning rate stays "
                           "below 'train.lr' throughout", self.warmup, self.total_steps)
        logger.info("%d image-caption entries; global batch %d = %d process(es) x %d%s; %d steps per epoch, "
                    "%d steps", len(samples), self.global_batch, self.world_size, self.batch,
                    f" ({self.accum} accumulated micro-batches)" if self.accum > 1 else "",
                    self.steps_per_epoch, self.total_steps)

    def _restore(self, state: Dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.runner.scaler is not None and state.get("scaler"):
            self.runner.scaler.load_state_dict(state["scaler"])
        self.failures.failed.update(state.get("failed", {}))
        if state.get("global_batch") != self.global_batch:
            logger.warning("Resuming with train.batch_size=%d, the state was written with %s: the data "
                           "order will differ from an uninterrupted run", self.global_batch, state.get("global_batch"))

    # ------------------------------------------------------------------------------------ loop
    def run(self) -> Dict[str, Any]:
        run, tr = self.runtime, self.opt["train"]
        ev = self.opt.get("eval") or {}
        print_freq, latest_freq = run.options.logger.print_freq, run.options.logger.save_latest_freq
        eval_freq = int(ev.get("eval_freq", 0) or 0)
        self.metrics: Dict[str, float] = {}
        if ev.get("eval_at_start") and run.step == 0:
            self.evaluate()
        logger.info("Start training at epoch %d, step %d of %d", run.epoch, run.step, self.total_steps)
        start, self.window = time.time(), (time.time(), run.step)
        self.truncated, last_loss = 0, float("nan")
        base_lr, min_lr = float(tr["lr"]), float(tr.get("min_lr", DEFAULTS["min_lr"]))
        for batch in run.batches(self.loader, self.total_steps, self.steps_per_epoch,
                                 on_epoch_start=lambda e: self.dataset.reseed(self.seed, e)):
            lr = lr_at(run.step, base_lr, self.total_steps, self.warmup, min_lr)
            set_lr(self.optimizer, lr)
            images = batch["image"].to(self.device, non_blocking=True)
            tokens = batch["text"].to(self.device, non_blocking=True)
            loss, norm = self.runner.step(split_micro(images, tokens, self.accum))
            self._note_failures(batch)
            if run.step % print_freq == 0 or run.step in (1, self.total_steps):
                last_loss = self._log(loss, lr, norm)
            if eval_freq and run.step % eval_freq == 0:
                self.evaluate()
            if run.step % latest_freq == 0 and run.step < self.total_steps:
                self.save()
        if eval_freq == 0 or run.step % eval_freq != 0:
            self.evaluate()
        self.save()
        export = self.export()
        logger.info("End of training: %d steps in %.1f s; %s", run.step, time.time() - start, peak_memory(self.device))
        run.close()
        return {"step": run.step, "loss": last_loss, "metrics": self.metrics, "export": export}

    def _note_failures(self, batch: Dict[str, Any]) -> None:
        """Log new unreadable images (replaced in the batch); stop past the tolerated fraction."""
        self.truncated += batch["truncated"]
        self.failures.record(batch["failed"])
        if self.world_size == 1:
            self.failures.check()

    def _log(self, loss: torch.Tensor, lr: float, norm: Optional[float]) -> float:
        self.failures.sync(self.world_size)
        if self.world_size > 1:
            loss = loss.clone()
            torch.distributed.all_reduce(loss)
            loss /= self.world_size  # mean of the ranks' losses = the loss of the global batch
        t0, s0 = self.window
        now = time.time()
        speed = (self.runtime.step - s0) * self.global_batch / max(now - t0, 1e-9)
        self.window = (now, self.runtime.step)
        scale = self.model.logit_scale.exp().item()
        values = {"loss": loss.item(), "lr": lr, "logit_scale": scale, "temperature": 1.0 / scale,
                  "samples_per_s": speed}
        if norm is not None:
            values["grad_norm"] = norm
        skipped = f"  skipped images {len(self.failures.failed)}" if self.failures.failed else ""
        truncated = f"  truncated captions {self.truncated}" if self.truncated else ""
        logger.info("[epoch %3d, step %6d/%d] loss %.6f  lr %.3e  logit_scale %.2f (temperature %.4f)  "
                    "%.1f samples/s%s%s", self.runtime.epoch, self.runtime.step, self.total_steps, values["loss"], lr, scale,
                    1.0 / scale, speed, skipped, truncated)
        self.writer.add_scalars(values, self.runtime.step, prefix="train/")
        return values["loss"]

    # ------------------------------------------------------------------------------------ outputs
    def evaluate(self) -> None:
        """Zero-shot IQA + retrieval on rank 0 (others wait); excluded from the samples/s window."""
        if self.evaluator is not None and self.evaluator.enabled:
            tic = time.time()
            self.metrics = self.evaluator(self.model)
            self.writer.add_scalars(self.metrics, self.runtime.step, prefix="eval/")
            self.writer.flush()
            logger.info("Evaluation @ step %d (%.1f s): %s", self.runtime.step, time.time() - tic,
                        "  ".join(f"{k} {v:.4f}" for k, v in self.metrics.items()))
        dist.barrier()
        self.window = (time.time(), self.runtime.step)

    def save(self) -> None:
        """Atomic training state of this step (model, optimiser, scaler, failures, every rank's RNG)."""
        self.runtime.save_state(lambda: {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scaler": self.runner.scaler.state_dict() if self.runner.scaler is not None else None,
            "global_batch": self.global_batch, "failed": dict(self.failures.failed)})
        self.window = (time.time(), self.runtime.step)

    def export(self) -> Path:
        ex = self.opt.get("export") or {}
        path = self.runtime.paths.exp_dir / ex.get("filename", "uniqa_backbone.pt")
        if self.rank == 0:
            export_backbone(self.model, path, ex.get("dtype", "fp32"), bool(ex.get("verify", True)))
        dist.barrier()
        return path


def peak_memory(device: torch.device) -> str:
    """Peak memory of this process: CUDA allocator peak on GPU, resident set size on CPU."""
    if device.type == "cuda":
        return f"peak CUDA memory {torch.cuda.max_memory_allocated(device) / 2**30:.2f} GiB"
    return f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB"


def main(argv: Optional[List[str]] = None) -> Dict[str, Any]:
    args = parse_run_args(argv, __doc__.splitlines()[0], "train.total_steps=100 model.grad_checkpointing=true",
                          kind="train_clip")
    # open_clip's gather_with_grad uses torch.distributed.nn.all_gather, which torch flags on every call
    warnings.filterwarnings("ignore", message=r"torch\.distributed\.nn\.functional\.all_gather is deprecated")
    return run_main(lambda: Trainer(args), args, LOGGER_NAMES)


def cli() -> None:
    run_cli(main, logger_name="train_clip")
