"""argparse value types shared by the commands; each rejects a bad value with one line naming it.

Numbers are ASCII digits only: ``int()`` reads ``١`` (an Arabic digit) as 1, and ``expq show ١``
must not show job 1. Text that ends up in files a worker reads (names, ``--env`` values) may hold
neither NUL nor the surrogate escapes Python makes of non-UTF-8 bytes in ``sys.argv``: both are
accepted by argparse and fail much later, in the worker, as an internal error.
"""
from __future__ import annotations

import argparse
import re
from collections.abc import Callable

from expq.contract import is_reserved_var

__all__ = ["whole_number", "count", "positive_seconds", "parse_duration", "job_id", "port", "state_name", "clean_text",
           "env_pair", "STATE_NAMES", "MAX_SECONDS"]

STATE_NAMES = ("pending", "running", "done", "failed", "cancelled")
MAX_SECONDS = 100 * 365 * 86400.0  # a century: beyond it a timer overflows, and it is surely a typo
_INTEGER = re.compile(r"[-+]?[0-9]{1,30}")  # ASCII only; 30 digits bound what int() is asked to read
_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_PLAIN_SECONDS = re.compile(rf"{_NUMBER}(?:[eE][-+]?[0-9]{{1,3}})?")
_DURATION = re.compile("".join(rf"(?:(?P<{u}>{_NUMBER}){u})?" for u in "wdhms"))
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}
_DURATION_HINT = "expected seconds (90) or a duration such as 90s, 2h30m, 1d"
_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def whole_number(low: int, high: int | None, expected: str) -> Callable[[str], int]:
    """A type accepting integers in ``[low, high]`` written in ASCII digits; ``expected`` completes
    "'x' is not ..."."""
    def parse(text: str) -> int:
        value = int(text) if _INTEGER.fullmatch(text) else None
        if value is None or value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{text!r} is not {expected}")
        return value
    return parse


def count(option: str) -> Callable[[str], int]:
    """A type for a count >= 0 such as ``--gpus`` or ``--retries`` (argparse names ``option``)."""
    return whole_number(0, None, f"a whole number >= 0 for {option}")


def parse_duration(text: str) -> float:
    """Seconds in ``text``: a plain number (``90``, ``0.5``) or units in decreasing order, each at most
    once (``90s``, ``2h30m``, ``1d``, ``1.5h``, ``2w``).

    Raises:
        ValueError: anything else, a zero or a negative duration, or more than ``MAX_SECONDS``.
    """
    stripped = text.strip()
    if _PLAIN_SECONDS.fullmatch(stripped):
        value = float(stripped)
    else:
        match = _DURATION.fullmatch(stripped)
        if not stripped or match is None:
            raise ValueError(f"{text!r} is not a duration: {_DURATION_HINT}")
        value = sum(float(amount) * _UNIT_SECONDS[unit] for unit, amount in match.groupdict().items()
                    if amount is not None)
    if not 0 < value <= MAX_SECONDS:
        raise ValueError(f"{text!r} is out of range: expected a duration above 0 and at most 100 years")
    return value


def positive_seconds(text: str) -> float:
    """The argparse type of every option that takes a time: plain seconds or a duration (``2h30m``)."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


job_id = whole_number(1, None, "a job id (a positive number like 12)")
port = whole_number(0, 65535, "a port (0-65535; 0 picks a free one)")


def state_name(text: str) -> str:
    if text not in STATE_NAMES:
        raise argparse.ArgumentTypeError(f"{text!r} is not a state: expected one of {', '.join(STATE_NAMES)}")
    return text


def _text_problem(text: str) -> str:
    if "\0" in text:
        return "contains a NUL character"
    if any("\ud800" <= ch <= "\udfff" for ch in text):
        return "contains bytes that are not UTF-8"
    return ""


def clean_text(text: str) -> str:
    """A type for free text stored in specs and files (``--name``, ``--experiment``, ``--tag``): any
    text but NUL and non-UTF-8 bytes."""
    problem = _text_problem(text)
    if problem:
        raise argparse.ArgumentTypeError(f"{text!r} {problem}")
    return text


def env_pair(text: str) -> tuple[str, str]:
    """A type for ``--env KEY=VALUE``: a shell-style name the worker does not set itself, and a value
    without NUL or non-UTF-8 bytes (an environment string cannot hold either)."""
    key, sep, value = text.partition("=")
    if not sep or not _ENV_KEY.fullmatch(key):
        raise argparse.ArgumentTypeError(
            f"{text!r} is not KEY=VALUE with a KEY of letters, digits and _ (not starting with a digit)")
    if is_reserved_var(key):
        raise argparse.ArgumentTypeError(
            f"{text!r}: {key} is set by the worker for each job and cannot be overridden")
    problem = _text_problem(value)
    if problem:
        raise argparse.ArgumentTypeError(f"{text!r}: the value of {key} {problem}")
    return key, value
