"""Console entry points of the protocol tools (``pyiqa-run-splits``, ``pyiqa-eval-zero-shot``,
``pyiqa-results-table``; see setup.py). Each parses ``sys.argv`` (or ``argv``), runs the command of
:mod:`pyiqa.protocols.commands` and ends a user error with its one-line message and exit status 2."""
from __future__ import annotations

from typing import List, Optional

from ..utils.entry import run_cli


def run_splits(argv: Optional[List[str]] = None) -> None:
    """``pyiqa-run-splits``: train and test every split of a dataset, summarise the protocols."""
    from .commands import run_splits as command
    run_cli(lambda: command.main(argv))


def eval_zero_shot(argv: Optional[List[str]] = None) -> None:
    """``pyiqa-eval-zero-shot``: zero-shot correlations of the UniQA model cards on whole datasets."""
    from .commands import eval_zero_shot as command
    run_cli(lambda: command.main(argv))


def results_table(argv: Optional[List[str]] = None) -> None:
    """``pyiqa-results-table``: our results beside the paper's, as Markdown tables and a chart."""
    from .commands import results_table as command
    run_cli(lambda: command.main(argv))
