"""Parse ``--sweep KEY=V1,V2,...`` options and expand them into one config per point.

Values are typed like ``--set`` (see ``expq.config``). The product is built
by copying only the mappings on the swept paths, so 10,000 points take milliseconds;
the configs it returns share unswept parts with the base and must be treated as read-only.
"""
from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from typing import Any

from expq._fs import slug
from expq.config import MISSING, parse_value, set_dotted, show, split_key
from expq.errors import InputError
from expq.launcher.template import format_value

__all__ = ["MAX_POINTS", "expand", "parse_sweep", "run_name"]

_NAME_LIMIT = 80
MAX_POINTS = 1_000_000  # a typo like range(0,10**9) fails at once instead of filling memory
_RANGE = re.compile(r"\s*range\s*\((.*)\)\s*", re.DOTALL)
_RANGE_START = re.compile(r"\s*range\s*\(")  # looks like a range: must parse as one, never a string
_INT = re.compile(r"\s*[-+]?[0-9]+\s*")
_OPEN = {"[": "]", "{": "}"}
_CLOSE = {"]": "[", "}": "{"}


def _split(text: str, what: str, offset: int) -> list[str]:
    """Split at commas outside brackets, braces and quotes (a quote opens only where a YAML value starts)."""
    parts: list[str] = []
    stack: list[str] = []
    start = 0
    quote = ""
    prev = ","  # last non-space character outside quotes
    i = 0
    while i < len(text):
        ch = text[i]
        if quote:
            if (ch == "\\" and quote == '"') or (ch == quote == "'" and text[i + 1 : i + 2] == "'"):
                i += 1  # an escaped character, or '' inside single quotes
            elif ch == quote:
                quote = ""
                prev = ch
        elif ch in "'\"" and prev in ",[{:":
            quote = ch
        elif ch in _OPEN:
            stack.append(ch)
        elif ch in _CLOSE:
            if not stack or stack.pop() != _CLOSE[ch]:
                raise InputError(f"invalid {what}: unbalanced {ch!r} at position {offset + i + 1}")
        elif ch == "," and not stack:
            parts.append(text[start:i])
            start = i + 1
        if not quote and not ch.isspace():
            prev = ch
        i += 1
    if quote:
        raise InputError(f"invalid {what}: unterminated {quote} quote")
    if stack:
        raise InputError(f"invalid {what}: unbalanced {stack[-1]!r}, missing {_OPEN[stack[-1]]!r}")
    parts.append(text[start:])
    return parts


def _range(args: str, what: str) -> list[int]:
    bounds = args.split(",")
    if not 1 <= len(bounds) <= 3 or not all(_INT.fullmatch(b) for b in bounds):
        raise InputError(f"invalid {what}: expected range(START,STOP[,STEP]) with integers")
    nums = [int(b) for b in bounds]
    if len(nums) == 3 and nums[2] == 0:
        raise InputError(f"invalid {what}: range step must not be 0")
    values = range(*nums)
    if len(values) > MAX_POINTS:
        raise InputError(f"invalid {what}: {len(values):,} values, more than the limit of {MAX_POINTS:,}")
    if not values:
        raise InputError(f"invalid {what}: no values; expected KEY=V1,V2,...")
    return list(values)


def parse_sweep(item: str) -> tuple[str, list[Any]]:
    """Parse one ``--sweep KEY=V1,V2,...`` or ``KEY=range(START,STOP[,STEP])`` into key and values.

    Commas inside ``[]``, ``{}`` or quotes do not split: ``layers=[1,2],[3,4]`` is two lists.
    ``range`` takes one to three integers, as Python's does; quote it (``'"range(3)"'``) for the string.
    Anything else that starts like ``range(`` is refused: ``range(3`` is a typo, never a value.

    Raises:
        InputError: no ``=``, an empty key, no values, an empty value between commas,
            unbalanced brackets or quotes, a bad or unclosed range, a value that is not YAML, or a repeated value.
    """
    what = f"--sweep {show(item)}"
    raw_key, sep, text = item.partition("=")
    if not sep:
        raise InputError(f"invalid {what}: expected KEY=V1,V2,...")
    key = raw_key.strip()
    split_key(key, what)
    if not text.strip():
        raise InputError(f"invalid {what}: no values; expected KEY=V1,V2,...")
    match = _RANGE.fullmatch(text)
    if match:
        return key, _range(match.group(1), what)
    if _RANGE_START.match(text):  # `range(3`, `range(3)x`, `range(1,3),5`: a typo, not the string it reads as
        raise InputError(f"invalid {what}: expected range(START,STOP[,STEP]) with integers and nothing after it; "
                         "quote the value for a string")
    values: list[Any] = []
    seen: set[str] = set()
    for n, part in enumerate(_split(text, what, len(raw_key) + 1), 1):
        if not part.strip():
            raise InputError(f"invalid {what}: value {n} is empty; write \"\" for an empty string")
        value = parse_value(part, f"{what} value {n}")
        if repr(value) in seen:
            raise InputError(f"invalid {what}: {show(value)} is given twice")
        seen.add(repr(value))
        values.append(value)
    return key, values


def _trie(sweeps: Sequence[tuple[str, list[Any]]]) -> dict[str, Any]:
    """Nest the sweep keys (``a.b``, ``a.c`` -> ``{a: {b: 0, c: 1}}``), leaves holding their index."""
    root: dict[str, Any] = {}
    seen: list[tuple[str, tuple[str, ...]]] = []
    for index, (key, _) in enumerate(sweeps):
        parts = split_key(key, f"--sweep key {show(key)}")
        for other, other_parts in seen:
            short = min(len(parts), len(other_parts))
            if parts[:short] == other_parts[:short]:
                if parts == other_parts:
                    raise InputError(f"duplicate --sweep key {show(key)}: give all its values in one --sweep")
                raise InputError(f"conflicting --sweep keys {show(other)} and {show(key)}: one contains the other")
        seen.append((key, parts))
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = index
    return root


def _apply(config: dict[str, Any], trie: dict[str, Any], point: tuple[Any, ...]) -> dict[str, Any]:
    out = dict(config)
    for part, sub in trie.items():
        if isinstance(sub, int):
            out[part] = point[sub]
        else:
            child = out.get(part, MISSING)
            out[part] = _apply(child if isinstance(child, dict) else {}, sub, point)
    return out


def expand(
    base: dict[str, Any], sweeps: Sequence[tuple[str, list[Any]]],
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """The Cartesian product of ``sweeps`` over ``base``, first key varying slowest.

    Each point is ``(config, sweep_values)``; ``sweep_values`` maps each dotted key to its value,
    in the order given. No sweeps gives ``[(base, {})]``.

    Raises:
        InputError: a key is given twice or contains another, a sweep has no values, a swept
            path runs through a non-mapping value of ``base``, or the product exceeds ``MAX_POINTS``.
    """
    if not sweeps:
        return [(base, {})]
    trie = _trie(sweeps)
    keys = [key for key, _ in sweeps]
    for key, values in sweeps:
        if not values:
            raise InputError(f"invalid --sweep {show(key)}: no values")
        set_dotted(base, key, values[0])  # a path through a non-mapping fails here, once
    total = math.prod(len(values) for _, values in sweeps)
    if total > MAX_POINTS:
        raise InputError(f"--sweep gives {total:,} jobs, more than the limit of {MAX_POINTS:,}")
    return [(_apply(base, trie, point), dict(zip(keys, point)))
            for point in itertools.product(*(values for _, values in sweeps))]


def run_name(sweep_values: dict[str, Any]) -> str:
    """A readable, path-safe name for one point, like ``lr=0.1,seed=1``; ``""`` without sweeps.

    Names are not unique (``a b`` and ``a_b`` both give ``a_b``): the caller numbers runs.
    A name cut to fit the limit ends in a hash of the whole text so long points stay apart.
    """
    if not sweep_values:
        return ""
    text = ",".join(f"{key}={format_value(value)}" for key, value in sweep_values.items())
    name = slug(text, limit=len(text))
    if len(name) <= _NAME_LIMIT:
        return name
    import hashlib  # only long names need it

    return f"{name[: _NAME_LIMIT - 9].rstrip('._')}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"
