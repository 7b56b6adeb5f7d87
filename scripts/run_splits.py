"""The ``pyiqa-run-splits`` console command, run from a clone: train and test every split of a dataset.

Code and help: pyiqa/protocols/commands/run_splits.py."""
from pyiqa.protocols.cli import run_splits

if __name__ == "__main__":
    run_splits()
