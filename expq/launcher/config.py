"""Turn ``--config`` files and ``--set`` overrides into one job config.

Values are YAML 1.1 as PyYAML reads it, with two changes taken from OmegaConf (what
Hydra users already expect): ``1e-3`` and ``3e4`` are floats, not strings, and dates
stay strings, because a ``datetime`` cannot go into a JSON job spec. Every function
here is pure and raises ``InputError`` before the caller writes anything.
"""
from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from expq.errors import InputError

__all__ = ["MISSING", "deep_merge", "get_dotted", "load_config_files", "parse_set", "parse_value",
           "resolve_config", "set_dotted", "show", "split_key"]

MISSING: Any = object()  # "no value here", distinct from None, which is a valid config value
_RAISE: Any = object()

_FLOAT = re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")
_PLAIN = (str, int, float, bool, type(None))


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # type: ignore[misc]
    """SafeLoader with scientific floats, no timestamps and duplicate keys refused."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[tuple[str, str]] = set()
        for key_node, _ in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                if (key_node.tag, key_node.value) in seen:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {key_node.value!r}", key_node.start_mark)
                seen.add((key_node.tag, key_node.value))
        return super().construct_mapping(node, deep)


_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789"))
_Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in _Loader.yaml_implicit_resolvers.items()
}


def show(value: object, limit: int = 80) -> str:
    """``repr`` cut to ``limit`` characters: error messages stay one short line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _where(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    return f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


def _problem(exc: yaml.YAMLError) -> str:
    return " ".join(str(getattr(exc, "problem", None) or exc).split())


def _check_plain(value: Any, what: str) -> None:
    """Refuse what JSON cannot hold (``!!set``, ``!!binary``, explicit dates) in a job config."""
    if isinstance(value, dict):
        for item in value.values():
            _check_plain(item, what)
    elif isinstance(value, list):
        for item in value:
            _check_plain(item, what)
    elif not isinstance(value, _PLAIN):
        raise InputError(f"invalid {what}: value {show(value)} has type {type(value).__name__}; "
                         "expected a string, number, boolean, null, list or mapping")


def parse_value(text: str, what: str) -> Any:
    """Type one command-line value as YAML (see the module docstring); ``what`` names it in errors.

    Blank text is the empty string. An unquoted value with a newline is kept verbatim, since
    YAML would fold the newline into a space; a ``#`` comment is refused, since YAML would
    silently drop it.

    Raises:
        InputError: the text is not one YAML value, or it holds a type JSON cannot.
    """
    if not text.strip():
        return ""
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise InputError(f"invalid {what}: '#' starts a YAML comment; quote the value to keep it")
        if isinstance(node, yaml.ScalarNode) and not node.style and "\n" in text.strip():
            return text.strip()
        if text[node.end_mark.index:].strip():
            raise InputError(f"invalid {what}: ' #' starts a YAML comment; quote the value to keep it")
        value = loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise InputError(f"invalid {what}: expected a YAML value ({_problem(exc)})") from None
    finally:
        loader.dispose()
    _check_plain(value, what)
    return value


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot read --config {str(path)!r}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputError(f"invalid --config {str(path)!r}: expected UTF-8 text") from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text, object_pairs_hook=lambda pairs: _json_object(pairs, path))
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid --config {str(path)!r} line {exc.lineno}, column {exc.colno}: "
                             f"expected JSON ({exc.msg})") from None
    try:
        return yaml.load(text, Loader=_Loader)  # noqa: S506 -- _Loader is a SafeLoader
    except yaml.YAMLError as exc:
        raise InputError(f"invalid --config {str(path)!r}{_where(exc)}: "
                         f"expected YAML ({_problem(exc)})") from None


def _json_object(pairs: list[tuple[str, Any]], path: Path) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        dup = next(k for i, (k, _) in enumerate(pairs) if k in dict(pairs[:i]))
        raise InputError(f"invalid --config {str(path)!r}: duplicate key {show(dup)}")
    return out


def load_config_files(paths: Sequence[str | Path]) -> dict[str, Any]:
    """Read YAML or JSON files (by extension, YAML otherwise) and deep-merge them, later winning.

    An empty YAML file is an empty mapping, so a placeholder file is harmless.

    Raises:
        InputError: a file is missing or unreadable, does not parse (with line and column),
            is not a mapping at top level, or holds a value JSON cannot.
    """
    merged: dict[str, Any] = {}
    for raw in paths:
        path = Path(raw)
        data = _read(path)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise InputError(f"invalid --config {str(path)!r}: expected a mapping at top level, "
                             f"got {type(data).__name__}")
        _check_plain(data, f"--config {str(path)!r}")
        merged = deep_merge(merged, data)
    return merged


def _copy(value: Any) -> Any:
    """Copy the containers of a plain tree (much cheaper than ``copy.deepcopy``)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` updated by ``override``: mappings merge key by key, anything else replaces.

    The result shares no container with either input, so later edits cannot leak back.
    """
    out = _copy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = _copy(value)
    return out


def split_key(key: str, what: str) -> tuple[str, ...]:
    """Split a dotted key (``model.lr``) into its parts.

    Raises:
        InputError: the key or one of its parts is empty.
    """
    if not key:
        raise InputError(f"invalid {what}: empty key; expected KEY=VALUE")
    parts = tuple(key.split("."))
    if "" in parts:
        raise InputError(f"invalid {what}: empty part in key {show(key)}; expected a dotted key like model.lr")
    return parts


def parse_set(item: str) -> tuple[str, Any]:
    """Parse one ``--set KEY=VALUE`` into the dotted key and its YAML-typed value.

    ``a=`` sets the empty string (write ``a=null`` for None): an empty shell variable
    then gives an empty string, as it would in the shell.

    Raises:
        InputError: no ``=``, an empty key or key part, or a value that is not YAML.
    """
    what = f"--set {show(item)}"
    key, sep, text = item.partition("=")
    if not sep:
        raise InputError(f"invalid {what}: expected KEY=VALUE")
    key = key.strip()
    split_key(key, what)
    return key, parse_value(text, what)


def _set_path(config: dict[str, Any], parts: tuple[str, ...], depth: int, value: Any) -> dict[str, Any]:
    out = dict(config)
    head = parts[depth]
    if depth == len(parts) - 1:
        out[head] = value
        return out
    child = out.get(head, MISSING)
    if child is MISSING:
        child = {}
    elif not isinstance(child, dict):
        raise InputError(f"cannot set {show('.'.join(parts))}: {show('.'.join(parts[: depth + 1]))} "
                         f"holds {type(child).__name__} {show(child, 40)}, expected a mapping")
    out[head] = _set_path(child, parts, depth + 1, value)
    return out


def set_dotted(config: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    """Return a copy of ``config`` with ``value`` at the dotted ``key``, making missing mappings.

    Only the mappings on the key's path are copied; the rest is shared with ``config``,
    which is never changed. A mapping already at ``key`` is replaced, not merged.

    Raises:
        InputError: an empty key part, or a part of the path holds a non-mapping value.
    """
    return _set_path(config, split_key(key, f"key {show(key)}"), 0, value)


def get_dotted(config: dict[str, Any], key: str, default: Any = _RAISE) -> Any:
    """The value at the dotted ``key``; ``default`` (e.g. ``MISSING``) if it is missing, else ``KeyError(key)``."""
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            if default is _RAISE:
                raise KeyError(key)
            return default
        node = node[part]
    return node


def resolve_config(files: Sequence[str | Path], sets: Sequence[str]) -> dict[str, Any]:
    """Merge the ``--config`` files in order, then apply each ``--set KEY=VALUE`` in order.

    Raises:
        InputError: from ``load_config_files``, ``parse_set`` or ``set_dotted``.
    """
    parsed = [parse_set(item) for item in sets]  # every --set is checked before any file is read
    config = load_config_files(files)
    for key, value in parsed:
        config = set_dotted(config, key, value)
    return config
