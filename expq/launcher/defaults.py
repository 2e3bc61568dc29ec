"""Defaults from ``expq.toml``: in the current directory, else in the root; flags override them.

One table per command, keys named like its long options (``-`` or ``_``), values as a flag would
take them (``timeout = "2h"`` or ``7200``, ``gpus = 1``, ``drain = true``, ``tag = ["a", "b"]``)::

    [submit]
    experiment = "mnist"
    gpus = 1
    retries = 2
    timeout = "2h"

    [worker]
    gpus = "0,1"
    heartbeat = "5s"

Every value goes through the option's own argument type, so a bad one fails like the flag would,
naming the file: one line, exit 2, before the command does anything. Looking for the file costs one
or two ``stat`` calls; ``tomllib`` is imported only when there is one.
"""
from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from expq.errors import InputError

__all__ = ["FILE_NAME", "find_file", "apply_file_defaults"]

FILE_NAME = "expq.toml"
# Options that must be given on the command line each time.
_NOT_DEFAULTS = {("worker", "detach"): "the background worker reads this file too and would start another"}


def _root_hint(argv: Sequence[str]) -> Path:
    from expq.contract import resolve_root

    root = None
    for i, word in enumerate(argv):
        if word == "--":
            break
        if word == "--root" and i + 1 < len(argv):
            root = argv[i + 1]
        elif word.startswith("--root="):
            root = word.split("=", 1)[1]
    return resolve_root(root)


def find_file(argv: Sequence[str]) -> Path | None:
    """``./expq.toml``, else ``ROOT/expq.toml``, else None."""
    for candidate in (Path.cwd() / FILE_NAME, _root_hint(argv) / FILE_NAME):
        if candidate.is_file():
            return candidate
    return None


def _load(path: Path) -> dict[str, Any]:
    try:
        import tomllib  # type: ignore[import-not-found,unused-ignore]
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[import-not-found,no-redef,unused-ignore]
    try:
        with open(path, "rb") as handle:
            data: dict[str, Any] = tomllib.load(handle)
    except (OSError, ValueError) as exc:  # TOMLDecodeError is a ValueError
        raise InputError(f"{path}: cannot read it: {exc}") from None
    return data


def _commands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _convert(path: Path, command: str, action: argparse.Action, value: Any) -> Any:
    where = f"{path}: [{command}] {action.dest.replace('_', '-')}"
    if isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction)):
        if not isinstance(value, bool):
            raise InputError(f"{where}: expected true or false, got {value!r}")
        return value
    values = value if isinstance(action, argparse._AppendAction) and isinstance(value, list) else [value]
    out = []
    for item in values:
        if isinstance(item, bool) or not isinstance(item, (str, int, float)):
            raise InputError(f"{where}: expected a string or a number, got {item!r}")
        text = str(item)
        try:
            converted = action.type(text) if callable(action.type) else text
        except (argparse.ArgumentTypeError, ValueError, TypeError) as exc:
            raise InputError(f"{where}: {exc}") from None
        if action.choices is not None and converted not in action.choices:
            raise InputError(f"{where}: {text!r} is not one of {', '.join(map(str, action.choices))}")
        out.append(converted)
    return out if isinstance(action, argparse._AppendAction) else out[0]


def apply_file_defaults(parser: argparse.ArgumentParser, argv: Sequence[str]) -> Path | None:
    """Make the values of ``expq.toml`` the defaults of their commands' options; returns the file used.

    Raises:
        InputError: an unreadable file, an unknown command or option, or a bad value.
    """
    path = find_file(argv)
    if path is None:
        return None
    data = _load(path)
    commands = _commands(parser)
    for command, table in data.items():
        if command not in commands or not isinstance(table, dict):
            raise InputError(f"{path}: [{command}] is not a command with options "
                             f"(expected tables such as [submit] or [worker])")
        sub = commands[command]
        options = {a.dest: a for a in sub._actions if a.option_strings and a.dest not in ("help", "root")}
        defaults = {}
        for key, value in table.items():
            dest = key.replace("-", "_")
            if (command, dest) in _NOT_DEFAULTS:
                raise InputError(f"{path}: [{command}] {key} cannot come from a file: {_NOT_DEFAULTS[command, dest]}")
            if dest not in options:
                raise InputError(f"{path}: [{command}] has no option {key!r}")
            defaults[dest] = _convert(path, command, options[dest], value)
        sub.set_defaults(**defaults)
    return path
