"""Entry-point wrapper: user errors end the programme with their message and exit code 2, no traceback."""
from __future__ import annotations

import logging
import sys
from typing import Callable


def run_cli(main: Callable[[], object], logger_name: str = "pyiqa") -> None:
    """Run ``main``; a PyiqaError is printed once (``error: ...`` on stderr) and kept in the run's log
    file when one is open, then the programme exits with status 2."""
    from .errors import PyiqaError
    try:
        main()
    except PyiqaError as e:
        record = logging.LogRecord(logger_name, logging.ERROR, __file__, 0, "%s", (e,), None)
        for handler in logging.getLogger(logger_name).handlers:
            if isinstance(handler, logging.FileHandler):  # the console gets it once, below
                handler.handle(record)
        sys.stderr.write(f"error: {e}\n")
        sys.exit(2)
