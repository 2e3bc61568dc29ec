"""The one config dialect of expq: loading files, typing ``--set`` values, merging, dotted keys.

Used by ``expq submit --config/--set``, by ``Experiment(config=...)``/``add_config``, by a job
reading its ``config.yaml`` (``$EXPQ_CONFIG``) and by the results reader, so a value means
the same everywhere. Values are YAML 1.1 as PyYAML reads it, with two changes taken from
OmegaConf (what Hydra users expect): ``1e-3`` and ``3e4`` are floats, not strings, and dates
stay strings, because a ``datetime`` cannot go into a JSON job spec. ``dump_config`` writes
YAML that this loader reads back to the same values. Files ending in ``.json`` are JSON,
anything else YAML. Duplicate keys are refused.

Every input is bounded, so hostile or mistaken input fails fast with one line: a config file
must be a regular file (not a FIFO or a device) of at most ``MAX_FILE_BYTES``; YAML aliases
may not expand beyond ``MAX_NODES`` values nor refer to themselves (a "billion laughs" file
fails at once); nesting is at most ``MAX_DEPTH`` deep; text must be UTF-8 without NUL.
Every function raises ``InputError`` before its caller writes anything. yaml is imported
only when YAML is read or written.
"""
from __future__ import annotations

import json
import os
import re
import stat
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from expq._fs import read_at_most
from expq.errors import InputError

if TYPE_CHECKING:
    import yaml

__all__ = [
    "MISSING", "MAX_FILE_BYTES", "MAX_NODES", "MAX_DEPTH", "load_config_file", "load_config_files",
    "parse_value", "parse_set", "resolve_config", "dump_config", "check_plain", "check_text",
    "deep_merge", "split_key", "set_dotted", "get_dotted", "expand_dotted", "flatten", "show",
]

MAX_FILE_BYTES = 4 << 20  # a config is settings, not data: 4 MiB is far more than any real one
MAX_NODES = 1_000_000  # values after expanding YAML aliases
MAX_DEPTH = 100  # nesting of mappings and lists

_FLOAT = re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")
_PLAIN = (str, int, float, bool, type(None))
_SURROGATE = re.compile("[\ud800-\udfff]")  # what undecodable bytes in argv become (surrogateescape)


class _Missing:
    """Marks a key absent from a config (None is a legitimate config value)."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()
_RAISE: Any = _Missing()


def show(value: object, limit: int = 80) -> str:
    """``repr`` cut to ``limit`` characters: error messages stay one short line."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# -- YAML: one loader and one dumper -----------------------------------------------------------

@lru_cache(maxsize=1)
def _loader_class() -> type:
    """SafeLoader (libyaml's when available) with scientific floats, no timestamps, no duplicate keys."""
    import yaml

    base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class Loader(base):
        def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
            seen: set[tuple[str, str]] = set()
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                    if (key_node.tag, key_node.value) in seen:
                        raise yaml.constructor.ConstructorError(
                            None, None, f"duplicate key {key_node.value!r}", key_node.start_mark)
                    seen.add((key_node.tag, key_node.value))
            result: dict[Any, Any] = super().construct_mapping(node, deep)
            return result

    Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789"))
    Loader.yaml_implicit_resolvers = {
        first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for first, resolvers in Loader.yaml_implicit_resolvers.items()
    }
    return Loader


@lru_cache(maxsize=1)
def _dumper_class() -> type:
    """SafeDumper that quotes every string the loader would read as something else (``'1e-3'``)."""
    import yaml

    base: Any = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

    class Dumper(base):
        pass

    Dumper.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT, list("-+0123456789"))
    return Dumper


def dump_config(config: Mapping[str, Any]) -> str:
    """YAML text of a plain config (keys in order) that ``load_config_file`` reads back unchanged.

    A flat config of integers and booleans under plain keys (most sweep points: seeds, sizes, flags)
    (and an empty one) is written directly, as the dumper would write it: the worker writes one per
    job, and the dumper (and importing it) costs a quarter of a trivial job's dispatch."""
    if not config:
        return "{}\n"
    if all(type(value) in (int, bool) and _plain_key(key) for key, value in config.items()):
        return "".join(f"{key}: {str(value).lower() if type(value) is bool else value}\n"
                       for key, value in config.items())
    import yaml

    text: str = yaml.dump(dict(config), Dumper=_dumper_class(), sort_keys=False, allow_unicode=True,
                          default_flow_style=False)
    return text


_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_YAML_WORDS = frozenset({"yes", "no", "on", "off", "true", "false", "null", "y", "n"})  # YAML 1.1 reads as non-strings


def _plain_key(key: object) -> bool:
    return isinstance(key, str) and _PLAIN_KEY.fullmatch(key) is not None and key.lower() not in _YAML_WORDS


def _problem(exc: Exception) -> str:
    return " ".join(str(getattr(exc, "problem", None) or exc).split())


def _where(exc: Exception) -> str:
    mark = getattr(exc, "problem_mark", None)
    return f" line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""


def _children(node: Any) -> list[Any]:
    import yaml

    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_expansion(root: Any, what: str) -> None:
    """Refuse a YAML node graph whose aliases expand too far, loop, or nest too deep.

    Aliases make the composed graph a DAG whose shared nodes count once per use; sizes are
    memoised per node, so the check is linear in the file even when the expansion is not.
    """
    sizes: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[Any, int, bool]] = [(root, 1, False)]
    while stack:
        node, depth, finished = stack.pop()
        key = id(node)
        if finished:
            on_path.discard(key)
            size = 1 + sum(sizes[id(child)] for child in _children(node))
            if size > MAX_NODES:
                raise InputError(f"invalid {what}: more than {MAX_NODES:,} values once YAML aliases are "
                                 "expanded; write the values out or use fewer aliases")
            sizes[key] = size
            continue
        if key in sizes:
            continue
        if depth > MAX_DEPTH:
            raise InputError(f"invalid {what}: nested deeper than {MAX_DEPTH} levels")
        on_path.add(key)
        stack.append((node, depth, True))
        for child in _children(node):
            if id(child) in on_path:
                raise InputError(f"invalid {what}: a YAML alias refers to a value that contains it")
            if id(child) not in sizes:
                stack.append((child, depth + 1, False))


def _load_yaml(text: str, what: str) -> Any:
    """One YAML document, composed, checked for size, then constructed."""
    import yaml

    loader = _loader_class()(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, what)
        return loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise InputError(f"invalid {what}{_where(exc)}: expected YAML ({_problem(exc)})") from None
    except (ValueError, RecursionError) as exc:  # an int of 5,000 digits; nesting deeper than the stack
        raise InputError(f"invalid {what}: {_unreadable(exc)}") from None
    finally:
        loader.dispose()


def _unreadable(exc: BaseException) -> str:
    """One short reason for a value Python itself refuses to build."""
    if isinstance(exc, RecursionError):
        return f"nested deeper than {MAX_DEPTH} levels"
    return str(exc).split(":", 1)[0]


# -- files -------------------------------------------------------------------------------------

def _read_text(path: Path, what: str) -> str:
    """The UTF-8 text of a regular file, read without blocking and at most ``MAX_FILE_BYTES``."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise InputError(f"cannot read {what}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise InputError(f"cannot read {what}: Is a directory")
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"cannot read {what}: not a regular file")
        raw = read_at_most(fd, MAX_FILE_BYTES, info.st_size, regular=True)
    except OSError as exc:
        raise InputError(f"cannot read {what}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    if len(raw) > MAX_FILE_BYTES:
        raise InputError(f"invalid {what}: larger than {MAX_FILE_BYTES >> 20} MiB; a config holds settings, "
                         "not data (point to the data with a path instead)")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"invalid {what}: expected UTF-8 text") from None


def _json_object(pairs: list[tuple[str, Any]], what: str) -> dict[str, Any]:
    out = dict(pairs)
    if len(out) != len(pairs):
        dup = next(k for i, (k, _) in enumerate(pairs) if k in dict(pairs[:i]))
        raise InputError(f"invalid {what}: duplicate key {show(dup)}")
    return out


def _parse_file(path: Path, text: str, what: str) -> Any:
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text, object_pairs_hook=lambda pairs: _json_object(pairs, what))
        except json.JSONDecodeError as exc:
            raise InputError(f"invalid {what} line {exc.lineno}, column {exc.colno}: "
                             f"expected JSON ({exc.msg})") from None
        except (ValueError, RecursionError) as exc:
            raise InputError(f"invalid {what}: {_unreadable(exc)}") from None
    return _load_yaml(text, what)


def load_config_file(path: str | os.PathLike[str], option: str = "config file") -> dict[str, Any]:
    """Read one YAML or JSON config file (by extension, YAML otherwise) into a plain mapping.

    An empty YAML file is an empty mapping, so a placeholder file is harmless. ``option`` names
    the file's origin in errors (``--config`` for the CLI).

    Raises:
        InputError: not a readable regular file, too large, not UTF-8, does not parse (with
            line and column), not a mapping at top level, or holds a value JSON cannot.
    """
    path = Path(path)
    what = f"{option} {str(path)!r}"
    data = _parse_file(path, _read_text(path, what), what)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise InputError(f"invalid {what}: expected a mapping at top level, got {type(data).__name__}")
    check_plain(data, what)
    return _string_keys(data, what)


def load_config_files(paths: Sequence[str | os.PathLike[str]], option: str = "--config") -> dict[str, Any]:
    """Read config files and deep-merge them in order, later winning.

    Raises:
        InputError: from ``load_config_file``.
    """
    merged: dict[str, Any] = {}
    for path in paths:
        merged = deep_merge(merged, load_config_file(path, option))
    return merged


# -- values ------------------------------------------------------------------------------------

def check_text(text: str, what: str) -> None:
    """Refuse text a file or an environment cannot hold: NUL, or bytes that were not UTF-8.

    Raises:
        InputError: naming ``what``.
    """
    if "\x00" in text:
        raise InputError(f"invalid {what}: contains a NUL character")
    if _SURROGATE.search(text):
        raise InputError(f"invalid {what}: not valid UTF-8 text")


def check_plain(value: Any, what: str) -> None:
    """Refuse what a JSON job spec cannot hold: other types (``!!set``, ``!!binary``, dates),
    strings with NUL or undecodable bytes, nesting deeper than ``MAX_DEPTH``.

    Iterative, so no input can exhaust the interpreter's stack.

    Raises:
        InputError: naming ``what`` and the offending value.
    """
    stack: list[tuple[Any, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            if depth >= MAX_DEPTH:
                raise InputError(f"invalid {what}: nested deeper than {MAX_DEPTH} levels")
            if isinstance(item, dict):
                for key in item:
                    if isinstance(key, str):
                        check_text(key, f"{what}: key {show(key, 40)}")
                stack.extend((child, depth + 1) for child in item.values())
            else:
                stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            check_text(item, f"{what}: value {show(item, 40)}")
        elif not isinstance(item, _PLAIN):
            raise InputError(f"invalid {what}: value {show(item)} has type {type(item).__name__}; "
                             "expected a string, number, boolean, null, list or mapping")


def _string_keys(value: Any, what: str) -> Any:
    """The same tree with integer keys as strings, as JSON (the job spec) would turn them.

    So ``0: a`` means ``{"0": "a"}`` for every reader, not an int by hand and a string in a
    job. Other non-string keys (YAML 1.1 reads ``on:``/``yes:`` as booleans) are refused.

    Raises:
        InputError: a key that is neither a string nor an integer, or two keys that collide.
    """
    if not isinstance(value, (dict, list)):
        return value
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(child for child in item if isinstance(child, (dict, list)))
            continue
        if any(not isinstance(key, str) for key in item):
            pairs = list(item.items())
            item.clear()
            for key, child in pairs:
                if isinstance(key, int) and not isinstance(key, bool):
                    key = str(key)
                elif not isinstance(key, str):
                    raise InputError(f"invalid {what}: key {show(key)} is not a string; quote it "
                                     "(YAML reads on/off/yes/no/null unquoted as values)")
                if key in item:
                    raise InputError(f"invalid {what}: duplicate key {show(key)}")
                item[key] = child
        stack.extend(child for child in item.values() if isinstance(child, (dict, list)))
    return value


def parse_value(text: str, what: str) -> Any:
    """Type one command-line value as YAML (see the module docstring); ``what`` names it in errors.

    Blank text is the empty string. An unquoted value with a newline is kept verbatim, since
    YAML would fold the newline into a space; a ``#`` comment is refused, since YAML would
    silently drop it.

    Raises:
        InputError: the text is not one YAML value, or it holds a type JSON cannot.
    """
    import yaml

    check_text(text, what)
    if not text.strip():
        return ""
    loader = _loader_class()(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise InputError(f"invalid {what}: '#' starts a YAML comment; quote the value to keep it")
        if isinstance(node, yaml.ScalarNode) and not node.style and "\n" in text.strip():
            return text.strip()
        if text[node.end_mark.index:].strip():
            raise InputError(f"invalid {what}: ' #' starts a YAML comment; quote the value to keep it")
        _check_expansion(node, what)
        value = loader.construct_document(node)
    except yaml.YAMLError as exc:
        raise InputError(f"invalid {what}: expected a YAML value ({_problem(exc)})") from None
    except (ValueError, RecursionError) as exc:
        raise InputError(f"invalid {what}: {_unreadable(exc)}") from None
    finally:
        loader.dispose()
    check_plain(value, what)
    return _string_keys(value, what)


def parse_set(item: str) -> tuple[str, Any]:
    """Parse one ``--set KEY=VALUE`` into the dotted key and its YAML-typed value.

    ``a=`` sets the empty string (write ``a=null`` for None): an empty shell variable
    then gives an empty string, as it would in the shell.

    Raises:
        InputError: no ``=``, an empty key or key part, NUL or non-UTF-8 bytes, or a value
            that is not YAML.
    """
    what = f"--set {show(item)}"
    check_text(item, what)
    key, sep, text = item.partition("=")
    if not sep:
        raise InputError(f"invalid {what}: expected KEY=VALUE")
    key = key.strip()
    split_key(key, what)
    return key, parse_value(text, what)


def resolve_config(files: Sequence[str | os.PathLike[str]], sets: Sequence[str]) -> dict[str, Any]:
    """Merge the ``--config`` files in order, then apply each ``--set KEY=VALUE`` in order.

    Raises:
        InputError: from ``load_config_files``, ``parse_set`` or ``set_dotted``.
    """
    parsed = [parse_set(item) for item in sets]  # every --set is checked before any file is read
    config = load_config_files(files)
    for key, value in parsed:
        config = set_dotted(config, key, value)
    return config


# -- merging and dotted keys -------------------------------------------------------------------

def _copy(value: Any) -> Any:
    """Copy the containers of a config tree (much cheaper than ``copy.deepcopy``); leaves are shared."""
    if isinstance(value, Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy(v) for v in value]
    return value


def deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Return ``base`` updated by ``override``: mappings merge key by key, anything else replaces.

    The result shares no mapping or list with either input, so later edits cannot leak back.
    """
    out: dict[str, Any] = _copy(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
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


def _set_path(config: Mapping[str, Any], parts: tuple[str, ...], depth: int, value: Any) -> dict[str, Any]:
    out = dict(config)
    head = parts[depth]
    if depth == len(parts) - 1:
        out[head] = value
        return out
    child = out.get(head, MISSING)
    if child is MISSING:
        child = {}
    elif not isinstance(child, Mapping):
        raise InputError(f"cannot set {show('.'.join(parts))}: {show('.'.join(parts[: depth + 1]))} "
                         f"holds {type(child).__name__} {show(child, 40)}, expected a mapping")
    out[head] = _set_path(child, parts, depth + 1, value)
    return out


def set_dotted(config: Mapping[str, Any], key: str, value: Any) -> dict[str, Any]:
    """Return a copy of ``config`` with ``value`` at the dotted ``key``, making missing mappings.

    Only the mappings on the key's path are copied; the rest is shared with ``config``,
    which is never changed. A mapping already at ``key`` is replaced, not merged.

    Raises:
        InputError: an empty key part, or a part of the path holds a non-mapping value.
    """
    return _set_path(config, split_key(key, f"key {show(key)}"), 0, value)


def get_dotted(config: Mapping[str, Any], key: str, default: Any = _RAISE) -> Any:
    """The value at the dotted ``key``; ``default`` (e.g. ``MISSING``) if missing, else ``KeyError(key)``.

    A part made of digits also finds an integer key, as a config built in Python may have.
    """
    node: Any = config
    for part in key.split("."):
        if isinstance(node, Mapping) and part in node:
            node = node[part]
        elif isinstance(node, Mapping) and part.isascii() and part.isdigit() and int(part) in node:
            node = node[int(part)]
        elif default is _RAISE:
            raise KeyError(key)
        else:
            return default
    return node


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
