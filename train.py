"""Entry point: ``python train.py -opt options/train/UniQA/demo.yml`` (see pyiqa/train.py)."""
from pyiqa.train import cli

if __name__ == "__main__":
    cli()
