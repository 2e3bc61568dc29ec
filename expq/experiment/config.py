"""Config dictionaries: deep merge, loading from YAML/JSON files, dotted keys.

Precedence, lowest first: ``add_config`` on the experiment, the queued job's config
(``EXPQ_CONFIG``), the run's overrides (``exp.run(fn, **overrides)`` and ``add_config`` inside
that run), and finally arguments passed explicitly to a captured function.
"""
from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any, Mapping

from expq.errors import InputError, NotFound

__all__ = ["deep_merge", "load_config", "expand_dotted", "flatten", "lookup", "MISSING"]


class _Missing:
    """Marks a key absent from a config (None is a legitimate config value)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """A new dict: ``update`` over ``base``, merging nested mappings key by key; inputs untouched."""
    merged: dict[str, Any] = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def load_config(source: Mapping[str, Any] | str | os.PathLike[str]) -> dict[str, Any]:
    """A config from a mapping or from a ``.yaml``/``.yml``/``.json`` file.

    Raises:
        InputError: an unknown extension, unparsable content, or content that is not a mapping.
        NotFound: the file does not exist.
    """
    if isinstance(source, Mapping):
        return expand_dotted(source)
    path = Path(source)
    suffix = path.suffix.lower()
    if suffix not in (".yaml", ".yml", ".json"):
        raise InputError(f"config file {path}: expected .yaml, .yml or .json")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise NotFound("config file", path) from None
    data = _parse(path, text, suffix)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"config file {path}: top level must be a mapping, not {type(data).__name__}")
    return expand_dotted(data)


def _parse(path: Path, text: str, suffix: str) -> Any:
    if suffix == ".json":
        try:
            return json.loads(text)
        except ValueError as error:
            raise InputError(f"config file {path}: {error}") from error
    import yaml

    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as error:
        raise InputError(f"config file {path}: {' '.join(str(error).split())}") from error


def expand_dotted(config: Mapping[str, Any]) -> dict[str, Any]:
    """Turn ``{"model.lr": 0.1}`` into ``{"model": {"lr": 0.1}}`` (top-level keys only)."""
    result: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(key, str) and "." in key:
            nested: Any = value
            for part in reversed(key.split(".")):
                nested = {part: nested}
            result = deep_merge(result, nested)
        elif isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result = deep_merge(result, {key: value})
        else:
            result[key] = value
    return result


def lookup(config: Mapping[str, Any], dotted: str) -> Any:
    """The value at ``a.b.c`` in nested mappings, or ``MISSING``."""
    node: Any = config
    for part in dotted.split("."):
        if not isinstance(node, Mapping):
            return MISSING
        if part in node:
            node = node[part]
        elif part.lstrip("-").isdigit() and int(part) in node:  # YAML/JSON-free configs keep int keys
            node = node[int(part)]
        else:
            return MISSING
    return node


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}}`` -> ``{"a.b": 1}``, for tables and comparisons."""
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat
