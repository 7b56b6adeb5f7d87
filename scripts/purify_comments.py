"""The ``pyiqa-purify-comments`` console command, run from a clone: keep the best AVA comments per image.

Code and help: train_clip/corpus/commands/purify_comments.py."""
from train_clip.corpus.cli import purify_comments

if __name__ == "__main__":
    purify_comments()
