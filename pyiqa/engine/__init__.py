"""Run machinery shared by the trainers (the adapter trainer ``pyiqa.train`` and ``train_clip``)."""
from .run import Run, add_run_arguments, parse_run_args, run_main, select_device

__all__ = ["Run", "add_run_arguments", "parse_run_args", "run_main", "select_device"]
