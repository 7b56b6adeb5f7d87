"""The configs that ship inside the package (``pyiqa/configs/<kind>/``), found by name.

A clone has them at ``options/`` (a link to ``pyiqa/configs``); a ``pip install`` has only the package,
so the commands accept a config by name as well as by path. ``-opt X`` resolves as: an existing regular
file ``X`` first; else the installed config of the command's kind named ``X``, spelled ``UniQA/koniq``,
``koniq`` (when that file name is unique) or the clone's ``options/train/UniQA/koniq.yml`` (the
``options/<kind>/`` prefix and the ``.yml`` are optional). Torch-free: resolving needs no model code.
"""
from __future__ import annotations

import argparse
import importlib.resources
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from .errors import ConfigError
from .registry import closest

#: kind -> (what its configs are, the command that runs them and lists them; None: no command)
KINDS: Dict[str, Tuple[str, Optional[str]]] = {
    "train": ("training config", "pyiqa-train"),
    "test": ("test config", "pyiqa-test"),
    "train_clip": ("CLIP pre-training config", "pyiqa-train-clip"),
    "descriptions": ("prompt templates file", None),
}
_PREFIXES = ("options/", "pyiqa/configs/", "configs/")  # the clone's spellings of the folder
_SUFFIXES = (".yml", ".yaml")


def configs_root() -> Path:
    """The installed ``pyiqa/configs`` folder (editable or not: wherever ``pyiqa`` is imported from)."""
    root = Path(str(importlib.resources.files("pyiqa") / "configs"))
    if not root.is_dir():
        raise ConfigError(f"The installed package has no config folder ({root}): pyiqa was installed "
                          "without its package data; reinstall it with pip (pip install pyiqa-uniqa / .)")
    return root


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"Unknown config kind '{kind}'; one of {sorted(KINDS)}")


def installed_configs(kind: str) -> Dict[str, Path]:
    """``{name: file}`` of the installed configs of ``kind``, sorted; a name is the path below
    ``configs/<kind>/`` without ``.yml`` (``UniQA/koniq``). Only regular files count."""
    _check_kind(kind)
    folder = configs_root() / kind
    files = [p for suffix in _SUFFIXES for p in folder.rglob(f"*{suffix}") if p.is_file()]
    return {p.relative_to(folder).with_suffix("").as_posix(): p for p in sorted(files)}


def list_configs(kind: str) -> List[str]:
    """The names of the installed configs of ``kind`` (``train``, ``test``, ``train_clip``, ``descriptions``)."""
    return list(installed_configs(kind))


def _as_name(arg: str, kind: str) -> Tuple[str, Optional[str]]:
    """(name, other kind or None): ``arg`` without the clone's folder prefix and the suffix; the other
    kind is set when the spelling points into another kind's folder (``options/test/...`` to pyiqa-train)."""
    text = arg.replace("\\", "/")
    while text.startswith("./"):
        text = text[2:]
    for prefix in _PREFIXES:
        if text.startswith(prefix):
            text = text[len(prefix):]
            break
    other = None
    head, _, rest = text.partition("/")
    if head in KINDS and rest:
        text, other = rest, (None if head == kind else head)
    for suffix in _SUFFIXES:
        if text.endswith(suffix):
            text = text[: -len(suffix)]
    return text, other


def resolve_option_file(arg: Union[str, Path], kind: str) -> Path:
    """The YAML that ``-opt arg`` means for a command of ``kind`` (the module docstring's rule).

    Raises:
        ConfigError: ``arg`` is neither a regular file nor an installed config of ``kind``; the message
            lists the installed names, the command that lists them and the closest name.
    """
    _check_kind(kind)
    given = Path(arg).expanduser()
    if given.is_file():  # a regular file (or a link to one): never a FIFO, device or folder
        return given
    configs = installed_configs(kind)
    name, other = _as_name(str(arg), kind)
    by_stem = [n for n in configs if n.rsplit("/", 1)[-1] == name]
    if other is None:  # a spelling into another kind's folder never falls back to this kind's config
        if name in configs:
            return configs[name]
        if len(by_stem) == 1:
            return configs[by_stem[0]]
    raise ConfigError(_not_found(str(arg), kind, name, configs, by_stem, other, given))


def _not_found(arg: str, kind: str, name: str, configs: Dict[str, Path], by_stem: Sequence[str],
               other: Optional[str], given: Path) -> str:
    what, command = KINDS[kind]
    if given.exists():
        head = f"'{arg}' is not a regular file (a folder or special file) nor an installed {what}."
    else:
        head = f"'{arg}' is neither a file nor an installed {what}."
    if len(by_stem) > 1:
        head += f" '{name}' names several: {', '.join(by_stem)}; give the full name."
    elif other is not None and name in installed_configs(other):
        other_what, other_command = KINDS[other]
        head += f" It names an installed {other_what}" + (f", which {other_command} runs." if other_command else ".")
    else:
        stems = sorted({n.rsplit("/", 1)[-1] for n in configs})
        head += closest(name, configs if "/" in name else stems)
    listing = ", ".join(configs) or "none"
    how = (f"list them with their files: {command} --list-configs" if command
           else f"they are in {configs_root() / kind}")
    return (f"{head} Installed {what}s: {listing} ({how}). Give one of these names, or the path of "
            "your own YAML (copy an installed one to start from).")


def format_config_list(kind: str) -> str:
    """The installed configs of ``kind``, one per line: name and file (what ``--list-configs`` prints)."""
    configs = installed_configs(kind)
    what, command = KINDS[kind]
    width = max((len(n) for n in configs), default=0)
    lines = [f"Installed {what}s ({command} -opt NAME; to change one, copy its file and pass the copy's "
             "path):" if command else f"Installed {what}s:"]
    lines += [f"  {n.ljust(width)}  {p}" for n, p in configs.items()]
    return "\n".join(lines)


class _ListConfigsAction(argparse.Action):
    """``--list-configs``: print the installed configs and exit 0, like ``--version`` (so the required
    ``-opt`` is not asked for)."""

    def __init__(self, option_strings: Sequence[str], dest: str, kind: str = "train", **kwargs: Any):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)
        self.kind = kind

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: Optional[str] = None) -> None:
        sys.stdout.write(format_config_list(self.kind) + "\n")
        parser.exit(0)


def add_config_arguments(parser: argparse.ArgumentParser, kind: str, what: str) -> argparse.ArgumentParser:
    """``-opt`` (a YAML path or an installed config name of ``kind``) and ``--list-configs``."""
    _check_kind(kind)
    example = "UniQA/demo" if kind in ("train", "test") else "demo"
    parser.add_argument("-opt", "--opt", required=True,
                        help=f"{what}: a YAML file, or the name of an installed config such as {example} "
                             "(see --list-configs)")
    parser.add_argument("--list-configs", action=_ListConfigsAction, kind=kind,
                        help=f"print the installed {KINDS[kind][0]}s with their files, then exit")
    return parser
