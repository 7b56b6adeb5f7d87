"""The ``pyiqa-generate-descriptions`` console command, run from a clone: describe images with an MLLM endpoint.

Code and help: train_clip/corpus/commands/generate_descriptions.py."""
from train_clip.corpus.cli import generate_descriptions

if __name__ == "__main__":
    generate_descriptions()
