"""Entry-point wrapper: user errors end the programme with their message and exit code 2, no traceback."""
from __future__ import annotations

import logging
import sys
from typing import Callable


def run_cli(main: Callable[[], object]) -> None:
    from .errors import PyiqaError
    try:
        main()
    except PyiqaError as e:
        logging.getLogger("pyiqa").error("%s", e)
        sys.stderr.write(f"error: {e}\n")
        sys.exit(2)
