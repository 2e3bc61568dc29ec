"""Injecting config values into a function's parameters by name (``@exp.capture``).

Rules, in order of precedence for each parameter:

1. an argument passed explicitly (positionally or by keyword) always wins;
2. else the value found in the config, looked up at call time in the active run's config;
3. else the function's own default;
4. else an ``InputError`` naming the function, the parameter and where it was looked for —
   never a guessed or ``None`` value.

Where a name is looked up: without ``prefixes``, among the top-level keys of the config. With
``prefixes=["a", "b.c"]``, each prefix provides its last segment as a name (``"details.towns"``
provides ``towns``) and, when its value is a mapping, that mapping's keys as well (``"model"``
provides ``lr`` from ``model.lr``). A name given directly by a prefix beats one found inside a
mapping; among equals the earlier prefix wins. A prefix missing from the config provides nothing.
A ``**kwargs`` parameter receives every other available key. Injected values are deep copies, so
a function mutating them cannot change the config. Positional-only parameters are never injected.
"""
from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from expq.errors import InputError
from expq.experiment.config import MISSING, lookup

__all__ = ["available_names", "source_keys", "bind_config", "captured", "is_captured"]

F = TypeVar("F", bound=Callable[..., Any])
_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def available_names(config: Mapping[str, Any], prefixes: Sequence[str] | None) -> dict[str, Any]:
    """Every name a captured function can receive from ``config`` under ``prefixes``."""
    if prefixes is None:
        return {key: value for key, value in config.items() if isinstance(key, str)}
    direct: dict[str, Any] = {}
    inside: dict[str, Any] = {}
    for prefix in prefixes:
        value = lookup(config, prefix)
        if value is MISSING:
            continue
        direct.setdefault(prefix.rsplit(".", 1)[-1], value)
        if isinstance(value, Mapping):
            for key, item in value.items():
                if isinstance(key, str):
                    inside.setdefault(key, item)
    return {**inside, **direct}


def source_keys(config: Mapping[str, Any], prefixes: Sequence[str] | None) -> dict[str, str]:
    """The dotted config key behind each name of ``available_names`` (same precedence), so an
    injected parameter counts as a read of that key (see ``expq.experiment.config_reads``)."""
    if prefixes is None:
        return {key: key for key in config if isinstance(key, str)}
    direct: dict[str, str] = {}
    inside: dict[str, str] = {}
    for prefix in prefixes:
        value = lookup(config, prefix)
        if value is MISSING:
            continue
        direct.setdefault(prefix.rsplit(".", 1)[-1], prefix)
        if isinstance(value, Mapping):
            for key in value:
                if isinstance(key, str):
                    inside.setdefault(key, f"{prefix}.{key}")
    return {**inside, **direct}


def bind_config(
    fn: Callable[..., Any],
    signature: inspect.Signature,
    config: Mapping[str, Any],
    prefixes: Sequence[str] | None,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> dict[str, Any]:
    """The keyword arguments to add to a call of ``fn(*args, **kwargs)`` from ``config``.

    Raises:
        InputError: a required parameter is neither passed nor found in the config.
        TypeError: the explicit arguments do not fit the signature (as a plain call would).
    """
    explicit = signature.bind_partial(*args, **kwargs).arguments
    names = available_names(config, prefixes)
    extra: dict[str, Any] = {}
    takes_kwargs = False
    for param in signature.parameters.values():
        if param.kind is inspect.Parameter.VAR_KEYWORD:
            takes_kwargs = True
            continue
        if param.kind not in _NAMED or param.name in explicit:
            continue
        if param.name in names:
            extra[param.name] = copy.deepcopy(names[param.name])
        elif param.default is inspect.Parameter.empty:
            where = "the top-level config keys" if prefixes is None else f"prefixes {list(prefixes)}"
            raise InputError(
                f"{getattr(fn, '__qualname__', fn)}() needs {param.name!r}: not passed and not found in {where}"
            )
    if takes_kwargs:
        named = set(signature.parameters)
        for key, value in names.items():
            if key not in named and key not in kwargs:
                extra[key] = copy.deepcopy(value)
    return extra


def captured(fn: F, get_config: Callable[[], Mapping[str, Any]], prefixes: Sequence[str] | None,
             on_read: Callable[[str], None] | None = None) -> F:
    """``fn`` wrapped so that each call receives config values it was not given explicitly;
    ``on_read`` is told the dotted key behind each injected value."""
    if isinstance(prefixes, str):
        prefixes = [prefixes]
    prefix_list = None if prefixes is None else list(prefixes)
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        config = get_config()
        extra = bind_config(fn, signature, config, prefix_list, args, kwargs)
        if on_read is not None and extra:
            keys = source_keys(config, prefix_list)
            for name in extra:
                on_read(keys.get(name, name))
        return fn(*args, **kwargs, **extra)

    wrapper.__expq_captured__ = True  # type: ignore[attr-defined]  # our wrapper, not the user's function
    return wrapper  # type: ignore[return-value]


def is_captured(fn: object) -> bool:
    """True for a function already wrapped by ``captured`` (so it is not wrapped twice)."""
    return getattr(fn, "__expq_captured__", False) is True
