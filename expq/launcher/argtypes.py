"""argparse value types shared by the commands; each rejects a bad value with one line naming it."""
from __future__ import annotations

import argparse
import math
from collections.abc import Callable

__all__ = ["whole_number", "positive_seconds", "job_id", "state_name", "STATE_NAMES"]

STATE_NAMES = ("pending", "running", "done", "failed", "cancelled")


def whole_number(low: int, high: int | None, expected: str) -> Callable[[str], int]:
    """A type accepting integers in ``[low, high]``; ``expected`` completes "'x' is not ..."."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"{text!r} is not {expected}")
        return value
    return parse


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds")
    return value


job_id = whole_number(1, None, "a job id (a positive number like 12)")


def state_name(text: str) -> str:
    if text not in STATE_NAMES:
        raise argparse.ArgumentTypeError(f"{text!r} is not a state: expected one of {', '.join(STATE_NAMES)}")
    return text
