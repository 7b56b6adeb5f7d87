"""Typed exceptions: every user-facing failure says what, where and how to fix it."""


class PyiqaError(Exception):
    """Base class of the errors this package raises on bad user input."""


class ConfigError(PyiqaError, ValueError):
    """A YAML option is unknown, missing or has a value of the wrong form."""


class DataError(PyiqaError):
    """A dataset file (meta CSV, split file, image) is missing or malformed."""


class CheckpointError(PyiqaError):
    """A weight file is missing, unreadable or does not fit the model."""


class OutputError(PyiqaError):
    """A file or folder of the run's output cannot be written (disk full, read-only, blocked path)."""


class TrainingError(PyiqaError):
    """Training cannot go on (e.g. the loss became NaN or infinite); the message names the last good state."""
