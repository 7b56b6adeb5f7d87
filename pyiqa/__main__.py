"""``python -m pyiqa``: the ``pyiqa`` command (also what ``torchrun -m pyiqa ...`` starts per process)."""
import sys

from .cli import main

if __name__ == "__main__":  # importing the module (e.g. walking the package) runs nothing
    sys.exit(main())
