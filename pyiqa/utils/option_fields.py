"""Typed option sections: a dataclass per YAML section, each key declared once with its default, its
check and the sentence that documents it.

A section is parsed once, at start-up, by :func:`parse_section`: unknown keys are refused with the
closest valid name, required keys must be present, every value goes through its field's check (which
returns the value as the program uses it, e.g. ``!!float 1e3`` -> 1000) and absent keys take their
defaults. What comes out is a frozen dataclass, so a module receives exactly the section it needs with
its types and cannot change what another module reads. :func:`to_plain` turns it back into the
resolved YAML mapping that runs and checkpoints store; :func:`markdown_rows` writes the README's key
table from the same declarations, so the documentation cannot drift from the code.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, Iterable, List, Optional, Type, TypeVar

from .options import check_section

T = TypeVar("T")

#: A field's check: (value, dotted key for messages) -> the value as the program uses it.
Check = Callable[[Any, str], Any]

REQUIRED = dataclasses.MISSING


def option(default: Any = REQUIRED, doc: str = "", check: Optional[Check] = None,
           shown_default: Optional[str] = None, nullable: Optional[bool] = None) -> Any:
    """Declare one YAML key: its default (``REQUIRED``: none), its check and its documentation.

    ``nullable``: whether ``key: ~`` (or an empty ``key:``) means the default; otherwise a null goes
    to the check like any value (and is refused there unless it means something). Fields whose default
    is None are nullable unless told otherwise. ``shown_default`` is how the README shows a default
    decided later (e.g. "one epoch"). Mutable defaults (dicts, lists) are copied per instance.
    """
    meta = {"doc": doc, "check": check, "shown_default": shown_default,
            "nullable": default is None if nullable is None else nullable}
    if isinstance(default, (dict, list)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def section(cls: Type[Any]) -> Optional[Type[Any]]:
    """The section class a field holds (its annotation names a dataclass), else None."""
    return cls if isinstance(cls, type) and dataclasses.is_dataclass(cls) else None


def _field_types(cls: Type[Any]) -> Dict[str, Any]:
    import typing
    return typing.get_type_hints(cls)


def is_required(field: dataclasses.Field) -> bool:
    return field.default is REQUIRED and field.default_factory is REQUIRED  # type: ignore[misc]


def parse_section(cls: Type[T], mapping: Any, where: str = "", legacy: Iterable[str] = ()) -> T:
    """``mapping`` (a YAML mapping, or None for an absent optional section) as a ``cls`` instance.

    Keys are checked against ``cls``'s fields (dotted keys in ``legacy`` are let through for the
    caller to notice); a field whose type is itself a section dataclass is parsed recursively.

    Raises:
        ConfigError: an unknown key (with the closest valid one), a missing required key, or a value
            its field's check refuses, always naming the dotted key.
    """
    fields = dataclasses.fields(cls)
    schema = {f.name: is_required(f) for f in fields}
    mapping = check_section(mapping, schema, where, legacy=legacy)
    types = _field_types(cls)
    prefix = f"{where}." if where else ""
    values: Dict[str, Any] = {}
    for f in fields:
        key = f"{prefix}{f.name}"
        sub = section(types.get(f.name))
        if sub is not None:
            values[f.name] = parse_section(sub, mapping.get(f.name), key, legacy)
            continue
        if f.name not in mapping or (mapping[f.name] is None and f.metadata.get("nullable")):
            continue  # the default
        check = f.metadata.get("check")
        values[f.name] = check(mapping[f.name], key) if check is not None else mapping[f.name]
    return cls(**values)


def to_plain(obj: Any) -> Any:
    """A section instance as the plain YAML mapping it stands for, without keys whose value is None
    (an absent key means the same), nested sections included."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {}
        for f in dataclasses.fields(obj):
            value = to_plain(getattr(obj, f.name))
            if value is not None or is_required(f):
                out[f.name] = value
        return out
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    return obj


def _shown(f: dataclasses.Field) -> str:
    if f.metadata.get("shown_default"):
        return f.metadata["shown_default"]
    if is_required(f):
        return "required"
    default = f.default if f.default is not REQUIRED else f.default_factory()  # type: ignore[misc]
    if default is None:
        return "none"
    if isinstance(default, bool):
        return f"`{str(default).lower()}`"
    return f"`{default}`"


def markdown_rows(cls: Type[Any], where: str = "", skip: Iterable[str] = ()) -> List[str]:
    """One README table row ``| `key` | default | meaning |`` per field, nested sections expanded."""
    rows: List[str] = []
    types = _field_types(cls)
    prefix = f"{where}." if where else ""
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        sub = section(types.get(f.name))
        if sub is not None:
            rows += markdown_rows(sub, f"{prefix}{f.name}")
            continue
        rows.append(f"| `{prefix}{f.name}` | {_shown(f)} | {f.metadata.get('doc', '')} |")
    return rows
