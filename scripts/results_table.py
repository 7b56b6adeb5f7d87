"""The ``pyiqa-results-table`` console command, run from a clone: our results beside the paper's.

Code and help: pyiqa/protocols/commands/results_table.py."""
from pyiqa.protocols.cli import results_table

if __name__ == "__main__":
    results_table()
