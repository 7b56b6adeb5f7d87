"""Refuse to run beside IQA-PyTorch in one environment.

IQA-PyTorch's distribution (``pip install pyiqa``) and this one (``pyiqa-uniqa``) both install the import
package ``pyiqa``; pip lets the second overwrite the first's files, so ``import pyiqa`` would run a mix
of the two with errors far from their cause. The installed package metadata tells (no network, a few
milliseconds): a distribution named ``pyiqa`` on ``sys.path`` is IQA-PyTorch.
"""
from __future__ import annotations

import os
import sys
from importlib import metadata

FOREIGN_DISTRIBUTION = "pyiqa"


class ForeignPyiqaError(ImportError):
    """IQA-PyTorch is installed in the same environment as pyiqa-uniqa."""


def refuse_foreign_pyiqa() -> None:
    """Raise ForeignPyiqaError when a ``pyiqa`` distribution (IQA-PyTorch) is installed here."""
    try:
        dist = metadata.distribution(FOREIGN_DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return
    where = getattr(dist, "_path", None)  # the .dist-info folder, for the message only
    where = os.path.abspath(where) if where is not None else None
    raise ForeignPyiqaError(
        f"IQA-PyTorch (distribution 'pyiqa' {dist.version}{f', {where}' if where else ''}) is installed "
        f"in the same environment as pyiqa-uniqa ({sys.prefix}). Both install the import package "
        "'pyiqa', so pip has let one overwrite the other's files and `import pyiqa` would run a mix of "
        "the two. Fix: give each its own virtual environment (python -m venv ...), or remove both "
        "(pip uninstall pyiqa pyiqa-uniqa) and install the one you want.")
