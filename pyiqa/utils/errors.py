"""Typed exceptions: every user-facing failure says what, where and how to fix it."""


class PyiqaError(Exception):
    """Base class of the errors this package raises on bad user input."""


class ConfigError(PyiqaError, ValueError):
    """A YAML option is unknown, missing or has a value of the wrong form."""


class DataError(PyiqaError):
    """A dataset file (meta CSV, split file, image) is missing or malformed."""


class CheckpointError(PyiqaError):
    """A weight file is missing, unreadable or does not fit the model."""
