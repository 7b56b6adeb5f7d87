"""Read and override experiment YAMLs, and the generic checks every options schema uses.

The YAML is parsed with a safe loader that also refuses a key given twice in one mapping, and never
mutated afterwards: runtime state (rank, paths, iteration) lives in :class:`pyiqa.engine.run.Run`.
``validate_options`` runs at start-up, before any data or model is built, so a mistake costs no time:
every fixed section is checked against the schema below, and the values the trainer reads (batch sizes,
frequencies, lengths, learning rates, seed, devices, losses, optimiser, schedule, metrics) against what
they must be. ``network`` and the dataset classes' own options are checked against their constructors'
signatures when built. Unknown keys raise with the closest valid name; legacy keys of the authors'
pyiqa-based release are accepted with a notice.
"""
from __future__ import annotations

import copy
import io
import logging
import math
import re
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional

import yaml

from .errors import ConfigError
from .registry import closest

logger = logging.getLogger(__name__)

FLOAT_RE = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)[eE][-+]?\d+")
NUMBER_RE = re.compile(r"\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*")


def as_number(value: Any) -> Optional[float]:
    """``value`` as a float if it is a number or a numeric string, else None.

    YAML 1.1 reads ``2e-4`` (no dot) as a string; pyiqa's configs write such values, so a plain decimal
    or exponent string counts as the number it spells. Booleans, 'nan', 'inf' and other text do not.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and NUMBER_RE.fullmatch(value):
        return float(value)
    return None


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key written twice in one mapping.

    ``yaml.safe_load`` silently keeps the last value, so a pasted second ``lr:`` would win unnoticed.
    Merge keys (``<<``) may still be overridden, as YAML intends.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> Dict[Any, Any]:
        seen: Dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            try:
                first = seen.get(key)
            except TypeError:  # unhashable key: SafeLoader reports it below
                continue
            line = key_node.start_mark.line + 1
            if first is not None:
                raise ConfigError(f"Option file {key_node.start_mark.name}: key '{key}' is given twice in the "
                                  f"same mapping, on lines {first} and {line}; YAML would silently keep the "
                                  f"last one. Remove one of them")
            seen[key] = line
        return super().construct_mapping(node, deep)


#: Largest option file read: experiment YAMLs are a few kilobytes; a bigger file is not one.
MAX_OPTION_FILE_BYTES = 1 << 20


def load_yaml(path: str | Path) -> Dict[str, Any]:
    """Parse a YAML file safely; errors name the file. Only a regular file of at most
    :data:`MAX_OPTION_FILE_BYTES` is read (a device or FIFO would never end), as UTF-8 text."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"Option file not found: {path}")
    if not path.is_file():
        raise ConfigError(f"Option file {path} is not a regular file (a folder, device or pipe); give a YAML file")
    size = path.stat().st_size
    if size > MAX_OPTION_FILE_BYTES:
        raise ConfigError(f"Option file {path} is {size:,} bytes; an options YAML is at most "
                          f"{MAX_OPTION_FILE_BYTES:,} bytes (1 MiB). Is it the right file?")
    try:
        with open(path, "r", encoding="utf-8") as f:
            text = f.read(MAX_OPTION_FILE_BYTES + 1)
    except UnicodeDecodeError as e:
        raise ConfigError(f"Option file {path} is not UTF-8 text (byte {e.start}: {e.reason}); give a YAML "
                          "file") from e
    except OSError as e:
        raise ConfigError(f"Cannot read option file {path}: {e.strerror or e}") from e
    if "\x00" in text:
        raise ConfigError(f"Option file {path} holds NUL bytes: it is a binary file, not YAML")
    try:
        stream = io.StringIO(text)
        stream.name = str(path)  # so the loader's messages name the file
        opt = yaml.load(stream, Loader=UniqueKeyLoader)  # a yaml.SafeLoader: plain data only, no objects
    except yaml.YAMLError as e:
        raise ConfigError(f"Option file {path} is not valid YAML: {e}") from e
    if not isinstance(opt, dict):
        raise ConfigError(f"Option file {path} must hold a mapping at the top level, got {type(opt).__name__}")
    return opt


def apply_overrides(opt: Dict[str, Any], overrides: Iterable[str]) -> Dict[str, Any]:
    """Return a copy of ``opt`` with ``key.sub=value`` overrides applied.

    Values are parsed with ``yaml.safe_load`` (so ``1e-4``, ``true``, ``[1, 2]``, ``~`` work) and never
    evaluated as code. Intermediate mappings are created when missing; validation then catches typos.
    """
    opt = copy.deepcopy(opt)
    for item in overrides or []:
        if "=" not in item:
            raise ConfigError(f"--force_yml expects key.sub=value, got '{item}'")
        dotted, raw = item.split("=", 1)
        keys = [k for k in dotted.strip().split(".") if k]
        if not keys:
            raise ConfigError(f"--force_yml has an empty key in '{item}'")
        try:
            value = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as e:
            raise ConfigError(f"--force_yml value of '{dotted}' is not valid YAML: {raw!r} ({e})") from e
        if isinstance(value, str) and FLOAT_RE.fullmatch(value.strip()):
            value = float(value)  # YAML 1.1 reads '5e-4' as a string; on a command line it means a number
        node = opt
        for i, key in enumerate(keys[:-1]):
            nxt = node.get(key)
            if nxt is None:
                nxt = node[key] = {}
            if not isinstance(nxt, dict):
                raise ConfigError(f"--force_yml '{dotted}': '{'.'.join(keys[:i + 1])}' is not a mapping")
            node = nxt
        node[keys[-1]] = value
    return opt


def parse_name_paths(items: Iterable[str], flag: str) -> Dict[str, str]:
    """``['livec=/data/livec/Images', ...]`` of a command-line ``flag`` -> ``{'livec': '/data/livec/Images'}``."""
    out: Dict[str, str] = {}
    for item in items or []:
        name, sep, path = item.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise ConfigError(f"{flag} '{item}' must be NAME=PATH, e.g. livec=/data/livec/Images")
        out[name.strip()] = path.strip()
    return out


def check_section(section: Any, schema: Mapping[str, bool], where: str = "",
                  legacy: Iterable[str] = ()) -> Dict[str, Any]:
    """Validate one YAML mapping against ``{key: required}`` and return it.

    Unknown keys raise ConfigError naming ``where.key`` and the closest valid key (dotted keys listed
    in ``legacy`` are let through: the caller notices them); required keys that are missing or null
    raise too. ``None`` (an absent optional section) is returned as an empty mapping.
    """
    if section is None:
        section = {}
    if not isinstance(section, dict):
        raise ConfigError(f"'{where or 'top level'}' must be a mapping, got {section!r}")
    prefix = f"{where}." if where else ""
    for key in section:
        if key not in schema and f"{prefix}{key}" not in legacy:
            raise ConfigError(f"Unknown option '{prefix}{key}'.{closest(str(key), schema)} "
                              f"Valid keys: {sorted(schema)}")
    for key, required in schema.items():
        if required and section.get(key) is None:
            raise ConfigError(f"Missing required option '{prefix}{key}'")
    return section


#: Largest value an integer option may take: far beyond any real run (10**9 iterations at 1 ms each
#: is 11 days), and below 2**53, so a float that passes is an exact integer.
MAX_INT_OPTION = 10 ** 9


def check_int(value: Any, where: str, minimum: int, integral_floats: bool = True,
              maximum: int = MAX_INT_OPTION) -> int:
    """An integer in [minimum, maximum]; with ``integral_floats`` also 200.0 (the release writes
    ``!!float 200``), never a float with a fraction (4.5) and never a huge one (1e100 would run forever)."""
    ok = isinstance(value, int) and not isinstance(value, bool)
    if integral_floats and isinstance(value, float):
        ok = math.isfinite(value) and value.is_integer()
    if ok and minimum <= value <= maximum:
        return int(value)
    if ok and value > maximum:
        raise ConfigError(f"'{where}' must be an integer >= {minimum} and at most {maximum:,} (a sane bound; "
                          f"no run needs more), got {value!r}")
    hint = ""
    if isinstance(value, str) and as_number(value) is not None:
        hint = f" (YAML reads {value} as text: write it as a plain integer" + (
            f", or as !!float {value})" if integral_floats else ")")
    raise ConfigError(f"'{where}' must be an integer >= {minimum}, got {value!r}{hint}")


def check_positive_number(value: Any, where: str) -> None:
    """A finite number > 0; numeric strings such as '2e-4' count (see :func:`as_number`)."""
    check_float(value, where, 0, min_open=True)


def _bounds_text(minimum: Optional[float], maximum: Optional[float], min_open: bool, max_open: bool) -> str:
    parts = []
    if minimum is not None:
        parts.append(f"{'>' if min_open else '>='} {minimum:g}")
    if maximum is not None:
        parts.append(f"{'<' if max_open else '<='} {maximum:g}")
    return " and ".join(parts)


def check_float(value: Any, where: str, minimum: Optional[float] = None, maximum: Optional[float] = None,
                min_open: bool = False, max_open: bool = False, hint: str = "", text_ok: bool = True) -> float:
    """A finite number within [minimum, maximum] (``min_open`` / ``max_open`` exclude the bound); booleans,
    NaN and infinities never pass. Numeric strings such as '2e-4' count (see :func:`as_number`) unless
    ``text_ok`` is False: for values handed on unconverted, to a library that would compare the string.

    Returns the value as a float. ``hint`` (e.g. "the peak learning rate, e.g. 1e-5") ends the message.
    """
    number = as_number(value) if text_ok or not isinstance(value, str) else None
    ok = number is not None and math.isfinite(number)
    if ok and minimum is not None:
        ok = number > minimum if min_open else number >= minimum
    if ok and maximum is not None:
        ok = number < maximum if max_open else number <= maximum
    if ok:
        return number
    bounds = _bounds_text(minimum, maximum, min_open, max_open)
    quirk = ""
    if not text_ok and isinstance(value, str) and as_number(value) is not None:
        quirk = f" (YAML reads {value} as text: write it with a dot, e.g. 1.0e-4, or as !!float {value})"
    raise ConfigError(f"'{where}' must be a finite number{' ' + bounds if bounds else ''}"
                      f"{' (' + hint + ')' if hint else ''}, got {value!r}{quirk}")


def check_floats(value: Any, where: str, length: int, minimum: Optional[float] = None,
                 maximum: Optional[float] = None, min_open: bool = False, max_open: bool = False,
                 ordered: bool = False, example: str = "", text_ok: bool = True) -> List[float]:
    """A list of ``length`` numbers, each as :func:`check_float` wants it; with ``ordered`` also
    non-decreasing (a [low, high] range such as a crop's area fraction). Returns the floats."""
    eg = f", e.g. {example}" if example else ""
    if not isinstance(value, (list, tuple)) or len(value) != length:
        raise ConfigError(f"'{where}' must be a list of {length} numbers{eg}, got {value!r}")
    numbers = [check_float(v, f"{where}[{i}]", minimum, maximum, min_open, max_open, text_ok=text_ok)
               for i, v in enumerate(value)]
    if ordered and any(a > b for a, b in zip(numbers, numbers[1:])):
        raise ConfigError(f"'{where}' must be a [low, high] range with low <= high{eg}, got {value!r}")
    return numbers


def check_bool(section: Dict[str, Any], key: str, where: str) -> None:
    """``section[key]``, when present, is true or false."""
    if key in section:
        check_flag(section[key], where)


def check_flag(value: Any, where: str) -> bool:
    """``value`` if it is true or false (never 1, 'yes' or None)."""
    if not isinstance(value, bool):
        raise ConfigError(f"'{where}' must be true or false, got {value!r}")
    return value


def dataset_phase(key: str) -> Optional[str]:
    """'train', 'val' or 'test' for a ``datasets`` section name such as ``val_koniq``."""
    phase = str(key).split("_")[0]
    return phase if phase in ("train", "val", "test") else None


def dump_options(opt: Dict[str, Any], path: str | Path) -> None:
    """Save the resolved options beside the run (plain YAML, safe to reload)."""
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(opt, f, sort_keys=False)
