"""Entry point: ``python test.py -opt options/test/UniQA/demo.yml`` (see pyiqa/test.py)."""
from pyiqa.test import cli

if __name__ == "__main__":
    cli()
