"""Entry-point wrapper: user errors end the programme with their message and exit code 2, no traceback."""
from __future__ import annotations

import logging
import sys
from typing import Callable


def run_cli(main: Callable[[], object], logger_name: str = "pyiqa") -> None:
    from .errors import PyiqaError
    try:
        main()
    except PyiqaError as e:
        logging.getLogger(logger_name).error("%s", e)
        sys.stderr.write(f"error: {e}\n")
        sys.exit(2)
