"""Fill ``{key}`` and ``{a.b}`` placeholders in a job's command from its config.

``{{`` and ``}}`` are literal braces (as in ``str.format``), so shell snippets such as
``awk '{{print $1}}'`` must double them. ``{lr:.3f}`` applies a Python format spec to
the raw value. A command is parsed once and then rendered per config, so checking a
10,000-job sweep costs milliseconds.
"""
from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any

from expq.config import MISSING, get_dotted, show
from expq.errors import InputError

__all__ = ["MAX_FORMAT_WIDTH", "check", "format_value", "placeholders", "render", "render_all"]

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_NAME = re.compile(r"[^\s.{}:!]+(?:\.[^\s.{}:!]+)*")
_HINT = "write {{ and }} for literal braces"
MAX_FORMAT_WIDTH = 1000  # `{a:>1000000000}` would write a gigabyte into every spec; no argument needs this
# The standard format mini-language: [[fill]align][sign][z][#][0][width][grouping][.precision][type].
_FORMAT_SPEC = re.compile(r"(?:.?[<>=^])?[-+ ]?z?#?0?(?P<width>[0-9]*)[_,]?(?:\.(?P<precision>[0-9]*))?[a-zA-Z%]?",
                          re.DOTALL)

_Field = tuple[str, str, str]  # (dotted name, format spec, text as written)
_Arg = str | list[str | _Field]  # a plain argument, or literal text and fields


def format_value(value: Any) -> str:
    """Render a config value as one argument: strings as they are, numbers via ``str``,
    ``true``/``false``/``null``, lists and mappings as compact JSON.

    Booleans are lowercase because that is what YAML, JSON, Hydra/OmegaConf, ``strtobool``
    and ``expq --set`` all read back as a boolean (``ast.literal_eval`` is the one that wants
    ``True``); nothing here reads bare ``true`` as a string, so the value round-trips.
    """
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (int, float)):
        return str(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _compile_arg(arg: str) -> _Arg:
    if "{" not in arg and "}" not in arg:
        return arg
    parts: list[str | _Field] = []
    pos = 0
    for match in _TOKEN.finditer(arg):
        if match.start() > pos:
            parts.append(arg[pos : match.start()])
        pos = match.end()
        token = match.group(0)
        if token in ("{{", "}}"):
            parts.append(token[0])
        elif len(token) == 1:
            raise InputError(f"unbalanced {token!r} in command argument {show(arg)}: {_HINT}")
        else:
            parts.append(_field(match.group(1), token))
    if pos < len(arg):
        parts.append(arg[pos:])
    return parts


def _field(inner: str, token: str) -> _Field:
    name, _, spec = inner.partition(":")
    if not inner:
        raise InputError(f"empty placeholder {{}} in command: expected {{KEY}}; {_HINT}")
    if not _NAME.fullmatch(name) or not name.isprintable():
        raise InputError(f"invalid placeholder {show(token)} in command: expected {{KEY}} or {{KEY:FORMAT}}; {_HINT}")
    _check_sizes(spec, token)
    return name, spec, token


def _check_sizes(spec: str, token: str) -> None:
    """Refuse a width or precision above ``MAX_FORMAT_WIDTH`` before anything is formatted. A spec outside
    the mini-language is left to ``format``, which refuses it for every type a config value can have."""
    match = _FORMAT_SPEC.fullmatch(spec)
    if match is None:
        return
    for what in ("width", "precision"):
        digits = (match.group(what) or "").lstrip("0")
        if len(digits) > 6 or int(digits or 0) > MAX_FORMAT_WIDTH:  # a length check first: int() of 5,000 digits fails
            raise InputError(f"invalid placeholder {show(token)} in command: format {what} {show(digits, 20)} is "
                             f"more than {MAX_FORMAT_WIDTH}")


def _compile(argv: Sequence[str]) -> list[_Arg]:
    return [_compile_arg(arg) for arg in argv]


def placeholders(argv: Sequence[str]) -> set[str]:
    """The dotted config keys the command refers to.

    Raises:
        InputError: an unbalanced brace, an empty ``{}`` or a placeholder that is not a key.
    """
    return {part[0] for arg in _compile(argv) if not isinstance(arg, str)
            for part in arg if isinstance(part, tuple)}


def _fill(field: _Field, config: dict[str, Any]) -> str:
    name, spec, token = field
    value = get_dotted(config, name, MISSING)
    if value is MISSING:
        raise InputError(f"unknown placeholder {{{name}}} in command: no such config key")
    if not spec:
        return format_value(value)
    try:
        return format(value, spec)
    except (ValueError, TypeError) as exc:
        raise InputError(f"invalid placeholder {show(token)} in command: format {spec!r} does not apply "
                         f"to {type(value).__name__} {show(value, 40)} ({exc})") from None


def _render(compiled: list[_Arg], config: dict[str, Any]) -> list[str]:
    return [arg if isinstance(arg, str)
            else "".join(p if isinstance(p, str) else _fill(p, config) for p in arg)
            for arg in compiled]


def render(argv: Sequence[str], config: dict[str, Any]) -> list[str]:
    """The command with every placeholder replaced by its config value (see ``format_value``).

    Raises:
        InputError: a bad placeholder, a key missing from ``config``, or a format spec
            that does not apply to the value.
    """
    return _render(_compile(argv), config)


def render_all(argv: Sequence[str], configs: Sequence[dict[str, Any]]) -> list[list[str]]:
    """Render the command for every config, parsing it once; the caller enqueues only if this returns.

    Raises:
        InputError: as ``render``, naming the job (``job 3 of 1,000``) when there are several.
    """
    compiled = _compile(argv)
    if len(configs) == 1:
        return [_render(compiled, configs[0])]
    total = len(configs)
    out: list[list[str]] = []
    for n, config in enumerate(configs, 1):
        try:
            out.append(_render(compiled, config))
        except InputError as exc:
            raise InputError(f"{exc} (job {n:,} of {total:,})") from None
    return out


def check(argv: Sequence[str], configs: Sequence[dict[str, Any]]) -> None:
    """Fail before anything is enqueued if any placeholder does not render for any config.

    Raises:
        InputError: as ``render_all``.
    """
    render_all(argv, configs)
