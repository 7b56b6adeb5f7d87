"""Unpickling data files (pyiqa's split pickles) without letting them run code.

``pickle.load`` calls whatever callable a file names, so a planted split file could run anything. This
unpickler resolves only the globals that plain data needs: set/frozenset (protocol 2 names them), and
the few NumPy functions that rebuild arrays and scalars, under their NumPy 1.x (``numpy.core``) and 2.x
(``numpy._core``) module names, because published split files hold NumPy integer arrays. After loading,
every array and NumPy scalar must have an integer dtype, and every other leaf must be an int, a string
or None.
"""
from __future__ import annotations

import codecs
import importlib
import pickle
from pathlib import Path
from typing import Any, Callable, Dict, Tuple, Union

import numpy as np

from .errors import DataError

PathLike = Union[str, Path]
PLAIN_DATA = ("dicts, lists, tuples and sets of ints and strings, and NumPy integer arrays or "
              "scalars")


def _numpy_global(submodule: str, name: str) -> Callable[..., Any]:
    """``numpy._core.<submodule>.<name>`` (NumPy 2) or ``numpy.core.<submodule>.<name>`` (NumPy 1)."""
    for package in ("numpy._core", "numpy.core"):
        try:
            return getattr(importlib.import_module(f"{package}.{submodule}"), name)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"NumPy has no {submodule}.{name}")


def _allowed_globals() -> Dict[Tuple[str, str], Any]:
    allowed: Dict[Tuple[str, str], Any] = {}
    for module in ("builtins", "__builtin__"):  # protocol 2 spells sets as GLOBAL set
        allowed[(module, "set")] = set
        allowed[(module, "frozenset")] = frozenset
    allowed[("_codecs", "encode")] = codecs.encode  # protocol 2 stores bytes as encode(str, 'latin1')
    allowed[("numpy", "ndarray")] = np.ndarray
    allowed[("numpy", "dtype")] = np.dtype
    for submodule, name in (("multiarray", "_reconstruct"), ("multiarray", "scalar"),
                            ("numeric", "_frombuffer")):
        try:
            function = _numpy_global(submodule, name)
        except ImportError:
            continue
        for package in ("numpy._core", "numpy.core"):
            allowed[(f"{package}.{submodule}", name)] = function
    return allowed


class RefusedGlobal(pickle.UnpicklingError):
    """The pickle names a global outside the allowed set."""

    def __init__(self, module: str, name: str):
        super().__init__(f"{module}.{name}")
        self.global_name = f"{module}.{name}"


class DataUnpickler(pickle.Unpickler):
    """``pickle.Unpickler`` that resolves only the globals plain data and NumPy integer arrays need."""

    _allowed = _allowed_globals()

    def find_class(self, module: str, name: str) -> Any:
        try:
            return self._allowed[(module, name)]
        except KeyError:
            raise RefusedGlobal(module, name) from None


def load_data_pickle(path: PathLike, what: str = "Pickle file") -> Any:
    """Unpickle ``path`` allowing only plain data (see the module docstring).

    Args:
        what: what the file is, for messages ("Split file").

    Raises:
        DataError: missing or corrupt file; a refused global (named, with what to do if the file is
            trusted); an array or scalar that is not an integer, or another kind of value.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{what} '{path}' does not exist")
    try:
        with open(path, "rb") as f:
            data = DataUnpickler(f).load()
    except RefusedGlobal as err:
        raise DataError(
            f"{what} '{path}' was refused: it holds the Python object {err.global_name}, and unpickling "
            f"it could run code. Only {PLAIN_DATA} are read. If you trust the file, load it yourself "
            "with pickle.load and save the splits again as plain lists of ints (e.g. "
            "{1: {'train': [int(r) for r in rows], ...}}).") from None
    except Exception as exc:  # pickle raises almost anything on a corrupt file
        raise DataError(f"{what} '{path}' cannot be unpickled: {type(exc).__name__}: {exc}") from exc
    try:
        _check_plain(data, path, what, "the file")
    except RecursionError:
        raise DataError(f"{what} '{path}' is nested too deeply to be a split file.") from None
    return data


def _check_plain(value: Any, path: Path, what: str, where: str) -> None:
    """Raise DataError unless ``value`` is plain data with integer arrays only."""
    if isinstance(value, dict):
        for key, item in value.items():
            _check_plain(key, path, what, f"a key of {where}")
            _check_plain(item, path, what, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple, set, frozenset)):
        for k, item in enumerate(value):
            _check_plain(item, path, what, f"{where}[{k}]")
    elif isinstance(value, (np.ndarray, np.generic)):
        if not np.issubdtype(value.dtype, np.integer):
            raise DataError(f"{what} '{path}': {where} is a NumPy {type(value).__name__} of dtype "
                            f"{value.dtype}; only integer arrays (row indices) are accepted.")
    elif value is not None and not isinstance(value, (int, str)):
        raise DataError(f"{what} '{path}': {where} is a {type(value).__name__} ({value!r:.40}); only "
                        f"{PLAIN_DATA} are accepted.")
