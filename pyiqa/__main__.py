"""``python -m pyiqa``: the ``pyiqa`` command (also what ``torchrun -m pyiqa ...`` starts per process)."""
import sys

from .cli import main

sys.exit(main())
