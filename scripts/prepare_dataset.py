"""The ``pyiqa-prepare-dataset`` console command, run from a clone: prepare a downloaded dataset's meta CSV and splits.

Code and help: pyiqa/data/prepare/cli.py."""
from pyiqa.data.prepare.cli import main

if __name__ == "__main__":
    main()
