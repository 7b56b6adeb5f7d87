"""Entry point: ``python train_clip/train.py -opt options/train_clip/X.yml`` (or ``python -m train_clip.train``,
or the ``pyiqa-train-clip`` command); the programme is :mod:`train_clip.trainer`."""
from train_clip.trainer import cli

if __name__ == "__main__":
    cli()
