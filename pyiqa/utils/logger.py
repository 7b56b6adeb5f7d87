"""Logging set-up for the entry points, and a rank-aware TensorBoard writer.

Library modules use ``logging.getLogger(__name__)``; only entry points call :func:`setup_logging`.
"""
from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path
from typing import Dict, Optional, Sequence

FORMAT = "%(asctime)s %(levelname)s: %(message)s"


def setup_logging(log_file: Optional[str | Path] = None, rank: int = 0, level: int = logging.INFO,
                  logger_names: Sequence[str] = ("pyiqa",), buffer: bool = False) -> None:
    """Console (+ file) logging for the ``pyiqa`` logger tree; ranks > 0 only report errors.

    ``logger_names`` lists the logger trees to configure (e.g. ``("pyiqa", "train_clip")`` for the
    pre-training application, whose modules log under their own package name); they share handlers.
    ``buffer``: keep the records in memory until :func:`attach_log_file` names the file, so a run
    that creates its folder only after its options and data are checked still logs from the start.
    """
    fmt = logging.Formatter(FORMAT, datefmt="%Y-%m-%d %H:%M:%S")
    console = logging.StreamHandler(sys.stdout)
    console.setFormatter(fmt)
    handlers: list = [console]
    if log_file is not None and rank == 0:
        handlers.append(_file_handler(log_file, fmt))
    elif buffer and rank == 0:
        handlers.append(logging.handlers.MemoryHandler(capacity=100_000, flushLevel=logging.CRITICAL + 1,
                                                       flushOnClose=False))
    for name in logger_names:
        root = logging.getLogger(name)
        root.handlers.clear()
        root.propagate = False
        root.setLevel(level if rank == 0 else logging.ERROR)
        for handler in handlers:
            root.addHandler(handler)


def attach_log_file(log_file: str | Path, logger_names: Sequence[str] = ("pyiqa",)) -> logging.Handler:
    """Start writing the log to ``log_file``, beginning with the records buffered so far; returns the
    file's handler (for :func:`detach_log_file`)."""
    loggers = [logging.getLogger(name) for name in logger_names]
    buffers = {h for lg in loggers for h in lg.handlers if isinstance(h, logging.handlers.MemoryHandler)}
    fmt = next((h.formatter for lg in loggers for h in lg.handlers if h.formatter is not None), None)
    fh = _file_handler(log_file, fmt or logging.Formatter(FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
    for buf in buffers:
        buf.setTarget(fh)
        buf.flush()
    for lg in loggers:
        for buf in buffers:
            lg.removeHandler(buf)
        lg.addHandler(fh)
    return fh


def detach_log_file(handler: logging.Handler, logger_names: Sequence[str] = ("pyiqa",)) -> None:
    """Stop writing to the file of :func:`attach_log_file` and close it."""
    for name in logger_names:
        logging.getLogger(name).removeHandler(handler)
    handler.close()


def _file_handler(log_file: str | Path, fmt: logging.Formatter) -> logging.FileHandler:
    Path(log_file).parent.mkdir(parents=True, exist_ok=True)
    fh = logging.FileHandler(log_file, encoding="utf-8")
    fh.setFormatter(fmt)
    return fh


class ScalarWriter:
    """TensorBoard scalars on rank 0; a no-op elsewhere or when disabled."""

    def __init__(self, log_dir: Optional[str | Path], enabled: bool = True, purge_step: Optional[int] = None):
        self._tb = None
        if enabled and log_dir is not None:
            from torch.utils.tensorboard import SummaryWriter  # tensorboard is heavy; import on use
            self._tb = SummaryWriter(log_dir=str(log_dir), purge_step=purge_step)

    def add_scalars(self, values: Dict[str, float], step: int, prefix: str = "") -> None:
        if self._tb is None:
            return
        for key, value in values.items():
            self._tb.add_scalar(f"{prefix}{key}", float(value), step)

    def flush(self) -> None:
        if self._tb is not None:
            self._tb.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
