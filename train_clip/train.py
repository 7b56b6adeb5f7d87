"""``python train_clip/train.py -opt options/train_clip/X.yml``: contrastive pre-training of UniQA's CLIP.

One process (GPU or CPU), or ``torchrun --nproc_per_node=N train_clip/train.py -opt X.yml --launcher
pytorch`` (NCCL on GPUs, gloo on CPU; multi-node through torchrun's rendezvous flags). Writes
``experiments/<name>/``: the log and resolved options, ``tb_logger/``, ``training_states/<step>.state``
(``--auto_resume`` continues from the newest) and ``uniqa_backbone.pt``, the plain OpenAI-format CLIP
state dict that the adapter trainer's ``network.backbone`` loads. ``main(argv)`` is the whole programme.
"""
from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):  # run as a script: import the repository's packages, not this folder's files
    _HERE = Path(__file__).resolve().parent
    sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _HERE]
    sys.path.insert(0, str(_HERE.parent))

import argparse  # noqa: E402
import logging  # noqa: E402
import resource  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402
from typing import Any, Dict, List, Optional  # noqa: E402

import torch  # noqa: E402
from torch.utils.data import DataLoader  # noqa: E402

from pyiqa.data import seed_worker  # noqa: E402
from pyiqa.data.resumable_sampler import ResumableSampler  # noqa: E402
from pyiqa.train import select_device  # noqa: E402
from pyiqa.utils import dist  # noqa: E402
from pyiqa.utils.checkpoint import atomic_save, load_checkpoint  # noqa: E402
from pyiqa.utils.entry import run_cli  # noqa: E402
from pyiqa.utils.errors import CheckpointError, ConfigError  # noqa: E402
from pyiqa.utils.experiment import ExperimentPaths, resume_state_path  # noqa: E402
from pyiqa.utils.logger import ScalarWriter, setup_logging  # noqa: E402
from pyiqa.utils.options import dump_options  # noqa: E402
from pyiqa.utils.rng import get_rng_state, set_random_seed, set_rng_state  # noqa: E402
from pyiqa.version import __version__  # noqa: E402
from train_clip.data import CaptionDataset, FailureTracker, build_samples, clip_transform, collate, drop_missing  # noqa: E402,E501
from train_clip.evaluation import Evaluator  # noqa: E402
from train_clip.export import check_exportable, export_backbone  # noqa: E402
from train_clip.model import build_model, count  # noqa: E402
from train_clip.optim import DEFAULTS, build_optimizer, lr_at, set_lr  # noqa: E402
from train_clip.options import parse_options, per_rank_batch  # noqa: E402
from train_clip.step import ContrastiveStep, build_loss, resolve_precision, split_micro  # noqa: E402

logger = logging.getLogger("train_clip.train")


def parse_args(argv: Optional[List[str]]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-opt", "--opt", required=True, help="pre-training YAML")
    p.add_argument("--launcher", choices=["none", "pytorch"], default="none", help="'pytorch' under torchrun")
    p.add_argument("--auto_resume", action="store_true", help="continue from the newest training state")
    p.add_argument("--force_yml", nargs="+", default=[], metavar="KEY.SUB=VALUE",
                   help="override options, e.g. train.total_steps=100 model.grad_checkpointing=true")
    p.add_argument("--root", default=".", help="folder that receives experiments/ (default: cwd)")
    return p.parse_args(argv)


class Trainer:
    """Set-up in the order things are needed, then ``run``: the loop, evaluation, checkpoints, export."""

    def __init__(self, args: argparse.Namespace):
        self.args = args
        self.opt = opt = parse_options(args.opt, args.force_yml)
        self.rank, local_rank, self.world_size = 0, 0, 1
        if args.launcher == "pytorch":
            self.rank, local_rank, self.world_size = dist.init_dist((opt.get("dist_params") or {}).get("backend"))
        self.paths = ExperimentPaths(Path(args.root), opt["name"])
        resume_from = resume_state_path(opt, self.paths, args.auto_resume)
        archived = self.paths.prepare(resume=resume_from is not None) if self.rank == 0 else None
        dist.barrier()
        setup_logging(self.paths.exp_dir / f"train_clip_{opt['name']}_{time.strftime('%Y%m%d_%H%M%S')}.log",
                      self.rank, logger_names=("pyiqa", "train_clip"))
        if archived:
            logger.info("Previous run moved to %s", archived)
        if self.rank == 0:
            dump_options(opt, self.paths.exp_dir / f"{opt['name']}_options.yml")
        self.seed = int(opt.get("manual_seed") or 0)
        set_random_seed(self.seed + self.rank)
        self.device = select_device(opt.get("num_gpu", "auto"), local_rank)
        if self.device.type == "cuda":
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.precision = resolve_precision(opt.get("precision", "auto"), self.device)
        logger.info("Run '%s' on %s, world size %d, precision %s, seed %d", opt["name"], self.device,
                    self.world_size, self.precision, self.seed)

        self.model = build_model(opt["model"], self.seed)
        if opt["model"].get("backbone") is None:
            check_exportable(self.model)  # fail now, not after the run, if UniQA could not load it
        self.model.to(self.device)
        logger.info("CLIP: %s, image size %d", count(self.model), self.model.visual.image_size[0])
        self._build_data()
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
        self.step, self.epoch, self.epoch_step = 0, 0, 0
        if resume_from is not None:
            self._resume(resume_from)
        log_opt = opt.get("logger") or {}
        self.writer = ScalarWriter(self.paths.tb_logger, log_opt.get("use_tb_logger", True) and self.rank == 0,
                                   purge_step=self.step + 1 if resume_from else None)

    # ------------------------------------------------------------------------------------ set-up
    def _build_data(self) -> None:
        data, tr = self.opt["data"], self.opt["train"]
        samples = build_samples(data["train"], "data.train")
        self.failures = FailureTracker(len(samples), float(data.get("max_failed_fraction", 0.01)),
                                       report=self.paths.exp_dir / "failed_images.txt")
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
                                 pin_memory=self.device.type == "cuda", persistent_workers=False)
        self.steps_per_epoch = self.sampler.per_rank // self.batch
        self.total_steps = int(tr["total_steps"]) if tr.get("total_steps") else int(tr["epochs"]) * self.steps_per_epoch
        self.warmup = int(tr.get("warmup_steps", DEFAULTS["warmup_steps"]))
        logger.info("%d image-caption entries; global batch %d = %d process(es) x %d%s; %d steps per epoch, "
                    "%d steps", len(samples), self.global_batch, self.world_size, self.batch,
                    f" ({self.accum} accumulated micro-batches)" if self.accum > 1 else "",
                    self.steps_per_epoch, self.total_steps)

    def _resume(self, path: Path) -> None:
        state = load_checkpoint(path)
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            if self.runner.scaler is not None and state.get("scaler"):
                self.runner.scaler.load_state_dict(state["scaler"])
            self.step, self.epoch, self.epoch_step = state["step"], state["epoch"], state["epoch_step"]
            self.failures.failed.update(state.get("failed", {}))
        except (KeyError, RuntimeError) as err:
            raise CheckpointError(f"Training state {path} does not fit this run ({err}); it was written by "
                                  f"another configuration or program") from err
        if state.get("global_batch") != self.global_batch:
            logger.warning("Resuming with train.batch_size=%d, the state was written with %s: the data "
                           "order will differ from an uninterrupted run", self.global_batch, state.get("global_batch"))
        set_rng_state(state["rng"].get(self.rank) or state["rng"][0])
        logger.info("Resumed from %s at epoch %d, step %d", path, self.epoch, self.step)

    # ------------------------------------------------------------------------------------ loop
    def run(self) -> Dict[str, Any]:
        log_opt = self.opt.get("logger") or {}
        ev = self.opt.get("eval") or {}
        print_freq = int(log_opt.get("print_freq", 50))
        ckpt_freq = int(log_opt.get("save_checkpoint_freq", 1000))
        eval_freq = int(ev.get("eval_freq", 0) or 0)
        self.metrics: Dict[str, float] = {}
        if ev.get("eval_at_start") and self.step == 0:
            self.evaluate()
        logger.info("Start training at epoch %d, step %d of %d", self.epoch, self.step, self.total_steps)
        start, self.window = time.time(), (time.time(), self.step)
        self.truncated, last_loss = 0, float("nan")
        while self.step < self.total_steps:
            self.sampler.set_epoch(self.epoch, skip=self.epoch_step * self.batch)
            self.dataset.set_epoch(self.epoch)
            for batch in self.loader:
                self.step += 1
                self.epoch_step += 1
                lr = lr_at(self.step, float(self.opt["train"]["lr"]), self.total_steps, self.warmup,
                           float(self.opt["train"].get("min_lr", DEFAULTS["min_lr"])))
                set_lr(self.optimizer, lr)
                images = batch["image"].to(self.device, non_blocking=True)
                tokens = batch["text"].to(self.device, non_blocking=True)
                loss, norm = self.runner.step(split_micro(images, tokens, self.accum))
                self._note_failures(batch)
                if self.step % print_freq == 0 or self.step in (1, self.total_steps):
                    last_loss = self._log(loss, lr, norm)
                if eval_freq and self.step % eval_freq == 0:
                    self.evaluate()
                if self.step % ckpt_freq == 0 and self.step < self.total_steps:
                    self.save()
                if self.step >= self.total_steps:
                    break
            else:
                self.epoch, self.epoch_step = self.epoch + 1, 0
                continue
            if self.epoch_step == self.steps_per_epoch:
                self.epoch, self.epoch_step = self.epoch + 1, 0
            break
        if eval_freq == 0 or self.step % eval_freq != 0:
            self.evaluate()
        self.save()
        export = self.export()
        logger.info("End of training: %d steps in %.1f s; %s", self.step, time.time() - start, peak_memory(self.device))
        self.writer.close()
        return {"step": self.step, "loss": last_loss, "metrics": self.metrics, "export": export}

    def _note_failures(self, batch: Dict[str, Any]) -> None:
        """Log new unreadable images (replaced in the batch); stop past the tolerated fraction."""
        self.truncated += batch["truncated"]
        new = self.failures.add(batch["failed"])
        for path in new:
            logger.warning("Skipped unreadable image %s: %s", path, self.failures.failed[path])
        if self.world_size == 1:
            self.failures.check()

    def _sync_failures(self) -> None:
        """Every rank learns every rank's failures, so all stop together (no rank left waiting)."""
        if self.world_size > 1:
            gathered: List[Any] = [None] * self.world_size
            torch.distributed.all_gather_object(gathered, self.failures.failed)
            for failed in gathered:
                self.failures.add(list(failed.items()))
        self.failures.check()

    def _log(self, loss: torch.Tensor, lr: float, norm: Optional[float]) -> float:
        self._sync_failures()
        if self.world_size > 1:
            loss = loss.clone()
            torch.distributed.all_reduce(loss)
            loss /= self.world_size  # mean of the ranks' losses = the loss of the global batch
        t0, s0 = self.window
        now = time.time()
        speed = (self.step - s0) * self.global_batch / max(now - t0, 1e-9)
        self.window = (now, self.step)
        scale = self.model.logit_scale.exp().item()
        values = {"loss": loss.item(), "lr": lr, "logit_scale": scale, "temperature": 1.0 / scale,
                  "samples_per_s": speed}
        if norm is not None:
            values["grad_norm"] = norm
        skipped = f"  skipped images {len(self.failures.failed)}" if self.failures.failed else ""
        truncated = f"  truncated captions {self.truncated}" if self.truncated else ""
        logger.info("[epoch %3d, step %6d/%d] loss %.6f  lr %.3e  logit_scale %.2f (temperature %.4f)  "
                    "%.1f samples/s%s%s", self.epoch, self.step, self.total_steps, values["loss"], lr, scale,
                    1.0 / scale, speed, skipped, truncated)
        self.writer.add_scalars(values, self.step, prefix="train/")
        return values["loss"]

    # ------------------------------------------------------------------------------------ outputs
    def evaluate(self) -> None:
        """Zero-shot IQA + retrieval on rank 0 (others wait); excluded from the samples/s window."""
        if self.evaluator is not None and self.evaluator.enabled:
            tic = time.time()
            self.metrics = self.evaluator(self.model)
            self.writer.add_scalars(self.metrics, self.step, prefix="eval/")
            self.writer.flush()
            logger.info("Evaluation @ step %d (%.1f s): %s", self.step, time.time() - tic,
                        "  ".join(f"{k} {v:.4f}" for k, v in self.metrics.items()))
        dist.barrier()
        self.window = (time.time(), self.step)

    def save(self) -> None:
        """Atomic training state of this step (model, optimiser, scaler, counters, every rank's RNG)."""
        rng = get_rng_state()
        gathered: List[Any] = [rng]
        if self.world_size > 1:
            gathered = [None] * self.world_size
            torch.distributed.all_gather_object(gathered, rng)
        if self.rank == 0:
            state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                     "scaler": self.runner.scaler.state_dict() if self.runner.scaler is not None else None,
                     "step": self.step, "epoch": self.epoch, "epoch_step": self.epoch_step,
                     "global_batch": self.global_batch, "failed": dict(self.failures.failed),
                     "rng": dict(enumerate(gathered)), "config": self.opt, "version": __version__}
            atomic_save(state, self.paths.training_states / f"{self.step}.state")
            keep = int((self.opt.get("logger") or {}).get("keep_checkpoints", 2))
            for old in sorted(self.paths.training_states.glob("*.state"), key=lambda p: int(p.stem))[:-keep]:
                old.unlink()
            logger.info("Saved training state %s", self.paths.training_states / f"{self.step}.state")
        dist.barrier()
        self.window = (time.time(), self.step)

    def export(self) -> Path:
        ex = self.opt.get("export") or {}
        path = self.paths.exp_dir / ex.get("filename", "uniqa_backbone.pt")
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
    args = parse_args(argv)
    # open_clip's gather_with_grad uses torch.distributed.nn.all_gather, which torch flags on every call
    warnings.filterwarnings("ignore", message=r"torch\.distributed\.nn\.functional\.all_gather is deprecated")
    try:
        return Trainer(args).run()
    finally:
        dist.cleanup()


def cli() -> None:
    run_cli(main, logger_name="train_clip")


if __name__ == "__main__":
    cli()
