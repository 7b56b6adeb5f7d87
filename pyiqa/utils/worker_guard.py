"""DataLoader workers that fail loudly: a batch a worker cannot hand over ends the run instead of hanging it.

A worker sends each batch through a ``multiprocessing`` queue whose background thread moves the tensors
into shared memory. When that fails (``/dev/shm`` full, a file size limit such as ``ulimit -f``), the
standard library only prints the error in the worker and drops the batch, and the main process waits
for it forever. :func:`guard_loader` makes the worker send, in the batch's place, a small
:class:`WorkerSendError` that the DataLoader re-raises in the main process; :func:`loader_failure`
turns that (or a worker that died) into one :class:`~pyiqa.utils.errors.TrainingError`.
"""
from __future__ import annotations

import functools
import multiprocessing.queues
import os
import sys
from typing import Any, Callable, Iterator, Optional

from .errors import DataError, TrainingError


_OUT_OF_SPACE = ("File too large", "No space left on device", "unable to resize file", "unable to write to file")


class WorkerSendError(RuntimeError):
    """A DataLoader worker could not send a batch to the main process (re-raised there by the loader)."""


def _on_feeder_error(queue: Any, err: BaseException, obj: Any) -> None:
    """Replacement of ``Queue._on_queue_feeder_error`` in a worker: send the failure instead of the batch."""
    from torch._utils import ExceptionWrapper
    reason = f"{type(err).__name__}: {err}"
    if isinstance(obj, tuple) and len(obj) == 2 and not isinstance(obj[1], ExceptionWrapper):
        failure = WorkerSendError(f"could not hand a batch to the main process ({reason})")
        queue.put((obj[0], ExceptionWrapper((WorkerSendError, failure, None), where="in a DataLoader worker")))
        return
    # not a batch, or the failure itself could not be sent: end the worker, which the loader notices
    sys.stderr.write(f"DataLoader worker {os.getpid()} could not send to the main process ({reason}); exiting\n")
    os._exit(1)


def _guarded_init(original: Optional[Callable[[int], None]], worker_id: int) -> None:
    # runs in the worker process only: the main process's queues keep the standard behaviour
    multiprocessing.queues.Queue._on_queue_feeder_error = _on_feeder_error  # bound: gets the queue
    if original is not None:
        original(worker_id)


def guard_loader(loader: Any) -> None:
    """Install the guard in the workers ``loader`` starts from now on (a no-op without workers)."""
    init = getattr(loader, "worker_init_fn", None)
    if getattr(loader, "num_workers", 0) and getattr(init, "func", None) is not _guarded_init:
        loader.worker_init_fn = functools.partial(_guarded_init, init)


def loader_failure(err: BaseException) -> Optional[str]:
    """What failed, if ``err`` is a DataLoader worker failure (sent by the guard, or a worker that died)."""
    text = str(err)
    if isinstance(err, WorkerSendError):
        return text.rsplit("WorkerSendError: ", 1)[-1].strip()
    if isinstance(err, RuntimeError) and "DataLoader worker" in text and (
            "exited unexpectedly" in text or "is killed by signal" in text):
        return text.splitlines()[0]
    if "in DataLoader worker process" in text and any(s in text for s in _OUT_OF_SPACE):
        # the worker's collate could not place the batch in shared memory (re-raised by the loader)
        return [line for line in text.splitlines() if line.strip()][-1].strip()
    return None


def guarded_batches(loader: Any, failed: Callable[[str], BaseException]) -> Iterator[Any]:
    """``loader``'s batches with the guard installed; a failed worker raises ``failed(reason)``, never hangs."""
    guard_loader(loader)
    batches = iter(loader)
    while True:
        try:
            batch = next(batches)
        except StopIteration:
            return
        except RuntimeError as err:
            reason = loader_failure(err)
            if reason is None:
                raise
            raise failed(reason) from None
        yield batch


def reading_failed(what: str) -> Callable[[str], DataError]:
    """The ``failed`` of :func:`guarded_batches` for a loader that only reads (evaluation, scoring, caching)."""
    return lambda reason: DataError(
        f"A DataLoader worker failed while reading {what}: {reason}. Free shared memory (/dev/shm) or disk "
        "space, raise the file size limit or use fewer workers, then run again")


def worker_error(reason: str, step: int, epoch: int, last_state: Any) -> TrainingError:
    """The one error a failed worker ends the run with, naming the last complete training state."""
    return TrainingError(
        f"A DataLoader worker failed at iteration {step} (epoch {epoch}): {reason}. The run stopped; the last "
        f"complete training state is {last_state or 'none (none saved yet)'}. Free disk space or shared memory "
        "(/dev/shm), raise the file size limit or lower num_worker_per_gpu, then continue with --auto_resume")
