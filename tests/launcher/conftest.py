"""Fixtures shared by the launcher tests."""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager as ContextManager

import pytest

from expq.errors import InputError


@contextlib.contextmanager
def _raises_input(message: str) -> Iterator[None]:
    with pytest.raises(InputError) as info:
        yield
    assert str(info.value) == message
    assert info.value.exit_code == 2


@pytest.fixture
def raises_input() -> Callable[[str], ContextManager[None]]:
    """Expect an InputError (exit code 2) whose one-line text is exactly the message given."""
    return _raises_input


@pytest.fixture(autouse=True)
def _table_width(monkeypatch: pytest.MonkeyPatch) -> None:
    """The width a table gets when stdout is no terminal (``terminal.terminal_width``), whoever runs the
    tests: pytest-xdist's workers have COLUMNS=80, a terminal has its own. A test may set another."""
    monkeypatch.setenv("COLUMNS", "120")
