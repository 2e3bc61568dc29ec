"""Shared test helpers.

`wait_until` replaces bare sleeps in tests: it polls a predicate until it returns a truthy value
or a deadline passes, and fails with a clear message. Request the fixture `wait_until` (session
scope, so fixtures of any scope can use it); it is the plain function below. Importing this module
by name is not reliable: without `__init__.py` files every conftest.py is a module named
`conftest`, and pytest swaps them in sys.modules as it loads them.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import pytest

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
    timeout: float = 10.0,
    interval: float = 0.02,
    message: str | Callable[[], str] = "condition not met",
) -> T:
    """Call `predicate` every `interval` seconds until it returns something truthy; return that.

    Raises AssertionError with `message` (a string, or a callable giving one, evaluated only on
    timeout so it can describe the final state) when `timeout` seconds pass first. The predicate
    is always called once more at the deadline, so a slow machine never fails a check that has
    just become true.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        if time.monotonic() >= deadline:
            result = predicate()
            if result:
                return result
            text = message() if callable(message) else message
            raise AssertionError(f"timed out after {timeout:g} s: {text}")
        time.sleep(interval)


@pytest.fixture(name="wait_until", scope="session")
def wait_until_fixture() -> Callable[..., object]:
    """The `wait_until` function above, as a fixture."""
    return wait_until
