"""Console entry points of the corpus tools (``pyiqa-generate-descriptions``, ``pyiqa-purify-comments``,
``pyiqa-build-corpus``; see setup.py). Each parses ``sys.argv`` (or ``argv``), runs the command of
:mod:`train_clip.corpus.commands` and ends a user error with its one-line message and exit status 2."""
from __future__ import annotations

import sys
from typing import List, Optional

from pyiqa.utils.entry import run_cli


def generate_descriptions(argv: Optional[List[str]] = None) -> None:
    """``pyiqa-generate-descriptions``: describe a dataset's images with an MLLM endpoint. Exit status:
    0 all described; 1 some images failed (listed in ``<out>.failures.jsonl``; a re-run retries them);
    2 a user error; 130 interrupted."""
    from train_clip.corpus.commands import generate_descriptions as command
    summaries: list = []
    run_cli(lambda: summaries.append(command.main(argv)))
    if summaries and sum(summaries[0].failures.values()):
        sys.exit(1)


def purify_comments(argv: Optional[List[str]] = None) -> None:
    """``pyiqa-purify-comments``: keep the best AVA comments per image."""
    from train_clip.corpus.commands import purify_comments as command
    run_cli(lambda: command.main(argv), logger_name="train_clip")


def build_corpus(argv: Optional[List[str]] = None) -> None:
    """``pyiqa-build-corpus``: merge descriptions and kept comments into train_clip's caption JSON."""
    from train_clip.corpus.commands import build_corpus as command
    run_cli(lambda: command.main(argv))
