"""Name -> class/function tables so that YAML ``type:`` strings select implementations.

One small class (after mmengine's idea): duplicate names are an error, an unknown name lists the known
ones with the closest match, and ``build`` checks every option against the constructor's signature so a
typo in a config fails loudly instead of being ignored.
"""
from __future__ import annotations

import difflib
import inspect
import logging
from typing import Any, Callable, Dict, Iterable, Optional, Sequence

from .errors import ConfigError

logger = logging.getLogger(__name__)


def closest(name: str, candidates: Iterable[str]) -> str:
    """A ' Did you mean X?' suffix for error messages, or '' when nothing is close."""
    match = difflib.get_close_matches(str(name), list(candidates), n=1, cutoff=0.5)
    return f" Did you mean '{match[0]}'?" if match else ""


def check_kwargs(fn: Callable, kwargs: Dict[str, Any], where: str, also: Iterable[str] = ()) -> None:
    """Raise ConfigError naming ``where.key`` for every key ``fn`` does not accept.

    ``also``: keys a wrapper takes itself before passing the rest to ``fn`` (named as valid too). A
    ``where`` parameter is never a config key: :meth:`Registry.build` fills it with the config path.
    """
    params = inspect.signature(fn).parameters
    if any(p.kind == p.VAR_KEYWORD for p in params.values()):
        return
    valid = [n for n, p in params.items()
             if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n not in ("self", "where")] + list(also)
    for key in kwargs:
        if key not in valid:
            raise ConfigError(
                f"Unknown option '{where}.{key}'.{closest(key, valid)} Valid keys: {sorted(valid)}")


class Registry:
    """A named table of classes or functions, filled with the ``register`` decorator.

    Args:
        name: what the entries are, for messages ('metric').
        required_meta: facts every entry must declare when it registers (e.g. a metric's
            ``lower_better``), so callers read them with ``meta`` instead of guessing from the name.
    """

    def __init__(self, name: str, required_meta: Sequence[str] = ()):
        self.name = name
        self.required_meta = tuple(required_meta)
        self._items: Dict[str, Any] = {}
        self._meta: Dict[str, Dict[str, Any]] = {}

    def register(self, obj: Any = None, *, name: Optional[str] = None, **meta: Any):
        """Register ``obj`` under its ``__name__`` (or ``name``) with facts ``meta``; usable as a
        decorator (``@METRIC_REGISTRY.register(lower_better=True)``)."""
        def add(o):
            key = name or o.__name__
            if key in self._items:
                raise KeyError(f"'{key}' is already registered in the {self.name} registry")
            missing = [k for k in self.required_meta if k not in meta]
            if missing:
                raise TypeError(f"'{key}' must declare {missing} when it registers in the {self.name} "
                                f"registry, e.g. register({missing[0]}=...)")
            self._items[key] = o
            self._meta[key] = dict(meta)
            return o
        return add if obj is None else add(obj)

    def meta(self, name: str) -> Dict[str, Any]:
        """The facts ``name`` declared when it registered; an unknown name raises ConfigError."""
        self.get(name)
        return dict(self._meta[name])

    def get(self, name: str, where: Optional[str] = None) -> Any:
        """The entry ``name``; an unknown name raises ConfigError listing the known ones (and naming
        ``where``, the config key that gave it, when known)."""
        if name not in self._items:
            prefix = f"{where}: " if where else ""
            raise ConfigError(
                f"{prefix}Unknown {self.name} type '{name}'.{closest(name, self._items)} "
                f"Known {self.name} types: {', '.join(sorted(self._items))}")
        return self._items[name]

    def build(self, opt: Dict[str, Any], where: str, **extra: Any) -> Any:
        """Instantiate ``opt['type']`` with the remaining keys of ``opt`` plus ``extra``.

        ``where`` is the config path of ``opt`` (e.g. ``train.mos_loss_opt``) used in error messages;
        an implementation whose constructor declares a ``where`` parameter receives it too, so its own
        messages name the real section (``datasets.val_koniq``, not the phase's ``datasets.val``), and a
        config that sets ``where`` itself is refused. An implementation may declare
        ``legacy_options = {key: reason}``: such keys are dropped with a one-line notice, so YAMLs written
        for the authors' release run unchanged.
        """
        if not isinstance(opt, dict) or "type" not in opt:
            raise ConfigError(f"'{where}' must be a mapping with a 'type' key, got {opt!r}")
        kwargs = {k: v for k, v in opt.items() if k != "type"}
        obj = self.get(opt["type"])
        for key, reason in getattr(obj, "legacy_options", {}).items():
            if key in kwargs:
                kwargs.pop(key)
                logger.info("Ignoring legacy option '%s.%s': %s", where, key, reason)
        takes_where = "where" in inspect.signature(obj).parameters
        if takes_where and "where" in kwargs:
            raise ConfigError(f"'{where}.where' is not an option: the program names the section itself; "
                              "remove it")
        check_kwargs(obj, kwargs, where)
        kwargs.update(extra)
        if takes_where:
            kwargs["where"] = where
        return obj(**kwargs)

    def keys(self):
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        return name in self._items

    def __repr__(self) -> str:
        rows = "\n".join(f"  {k}: {getattr(v, '__module__', '?')}"
                         + "".join(f", {m}={x!r}" for m, x in self._meta[k].items())
                         for k, v in sorted(self._items.items()))
        return f"Registry({self.name})\n{rows}"


ARCH_REGISTRY = Registry("arch")
DATASET_REGISTRY = Registry("dataset")
LOSS_REGISTRY = Registry("loss")
METRIC_REGISTRY = Registry("metric", required_meta=("lower_better",))
