"""The ``pyiqa-eval-zero-shot`` console command, run from a clone: zero-shot UniQA on whole datasets.

Code and help: pyiqa/protocols/commands/eval_zero_shot.py."""
from pyiqa.protocols.cli import eval_zero_shot

if __name__ == "__main__":
    eval_zero_shot()
