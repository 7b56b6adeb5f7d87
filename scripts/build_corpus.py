"""The ``pyiqa-build-corpus`` console command, run from a clone: merge descriptions and comments into the caption JSON.

Code and help: train_clip/corpus/commands/build_corpus.py."""
from train_clip.corpus.cli import build_corpus

if __name__ == "__main__":
    build_corpus()
