"""The editable prompt templates of the description generator (the shipped ``descriptions/prompts.yml``).

The YAML holds a ``version`` string (stored with every description) and, per task, a ``system`` text, a
``user`` text with the placeholders ``{level}`` and ``{facts}``, and an optional ``facts`` line that
renders one dataset fact (``{column}``, ``{value}``). Templates are checked when loaded, so a typo in a
placeholder fails before the first request instead of reaching thousands of prompts.
"""
from __future__ import annotations

import importlib.resources
import re
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Mapping, Optional, Tuple, Union

import yaml

from pyiqa.utils.errors import ConfigError
from pyiqa.utils.registry import closest

PathLike = Union[str, Path]

TASKS: Tuple[str, ...] = ("quality", "aesthetics")
#: package data (pyiqa.utils.shipped_configs; ``options/descriptions/prompts.yml`` in a clone)
DEFAULT_PROMPTS = Path(str(importlib.resources.files("pyiqa") / "configs" / "descriptions" / "prompts.yml"))

_TOP_KEYS = ("version",) + TASKS
_TASK_KEYS = ("system", "user", "facts")
_TEXT_FIELDS = ("level", "facts")   # placeholders of system and user
_FACT_FIELDS = ("column", "value")  # placeholders of the facts line
_DEFAULT_FACT = "{column}: {value}."


@dataclass(frozen=True)
class TaskPrompt:
    """The templates of one task (already checked)."""

    system: str
    user: str
    facts: str = _DEFAULT_FACT


@dataclass(frozen=True)
class PromptSet:
    """All tasks' templates of one YAML file, with the version string stored beside each description."""

    version: str
    path: Path
    tasks: Dict[str, TaskPrompt]

    def render(self, task: str, level: str, facts: Optional[Mapping[str, str]] = None) -> Tuple[str, str]:
        """``(system, user)`` texts of one image: its level word and dataset facts filled in.

        Args:
            facts: ``{column: value}`` from the meta CSV; empty or None leaves ``{facts}`` empty.
        """
        tpl = self.tasks[task]
        fact_text = " ".join(tpl.facts.format(column=str(c).replace("_", " "), value=str(v).strip())
                             for c, v in (facts or {}).items() if str(v).strip())
        return (_tidy(tpl.system.format(level=level, facts=fact_text)),
                _tidy(tpl.user.format(level=level, facts=fact_text)))


def load_prompts(path: PathLike = DEFAULT_PROMPTS) -> PromptSet:
    """Read and check a prompts YAML.

    Raises:
        ConfigError: missing or unparsable file, missing ``version`` or task, unknown key (with the
            closest valid one), a template that is not text, an unknown placeholder, or a task whose
            texts never mention ``{level}``; the message names the file and the key.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"Prompts file '{path}' does not exist (default: {DEFAULT_PROMPTS})")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"Prompts file '{path}' cannot be parsed: {exc}") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"Prompts file '{path}' must be a mapping with keys {list(_TOP_KEYS)}")
    _check_keys(data, _TOP_KEYS, path, "")
    version = data.get("version")
    if not isinstance(version, (str, int, float)) or not str(version).strip():
        raise ConfigError(f"Prompts file '{path}': 'version' must be a non-empty string, got {version!r}")
    tasks = {task: _read_task(data, task, path) for task in TASKS}
    return PromptSet(version=str(version).strip(), path=path, tasks=tasks)


def _read_task(data: dict, task: str, path: Path) -> TaskPrompt:
    section = data.get(task)
    if not isinstance(section, dict):
        raise ConfigError(f"Prompts file '{path}': task '{task}' is missing or not a mapping; each of "
                          f"{list(TASKS)} needs 'system' and 'user' texts")
    _check_keys(section, _TASK_KEYS, path, f"{task}.")
    texts = {}
    for key in _TASK_KEYS:
        value = section.get(key, _DEFAULT_FACT if key == "facts" else None)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(f"Prompts file '{path}': '{task}.{key}' must be a non-empty text, got {value!r}")
        allowed = _FACT_FIELDS if key == "facts" else _TEXT_FIELDS
        fields = _placeholders(value, allowed, path, f"{task}.{key}")
        texts[key] = (value, fields)
    if "level" not in texts["system"][1] | texts["user"][1]:
        raise ConfigError(f"Prompts file '{path}': neither '{task}.system' nor '{task}.user' contains "
                          "{level}; the model must be told the human rating so its text agrees with it")
    return TaskPrompt(system=texts["system"][0], user=texts["user"][0], facts=texts["facts"][0])


def _placeholders(text: str, allowed: Tuple[str, ...], path: Path, key: str) -> set:
    """The placeholder names of a template; ConfigError on an unknown one or broken braces."""
    try:
        parsed = list(string.Formatter().parse(text))
    except ValueError as exc:
        raise ConfigError(f"Prompts file '{path}': '{key}' has unbalanced braces ({exc}); write literal "
                          "braces as {{ and }}") from exc
    names = set()
    for _, name, spec, conversion in parsed:
        if name is None:
            continue
        if name not in allowed or spec or conversion:
            shown = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            raise ConfigError(f"Prompts file '{path}': '{key}' has the unknown placeholder {shown}."
                              f"{closest(name, allowed)} Allowed: "
                              f"{', '.join('{' + a + '}' for a in allowed)}")
        names.add(name)
    return names


def _check_keys(section: dict, valid: Tuple[str, ...], path: Path, prefix: str) -> None:
    for key in section:
        if key not in valid:
            raise ConfigError(f"Prompts file '{path}': unknown key '{prefix}{key}'.{closest(str(key), valid)} "
                              f"Valid keys: {list(valid)}")


def _tidy(text: str) -> str:
    """Lines of a paragraph joined by single spaces (the YAML wraps for reading, not for the model),
    paragraphs (blank-line separated) kept apart; an empty ``{facts}`` leaves no double space."""
    paragraphs = (" ".join(p.split()) for p in re.split(r"\n\s*\n", text))
    return "\n\n".join(p for p in paragraphs if p)
