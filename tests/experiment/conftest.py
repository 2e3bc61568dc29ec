"""Fixtures for tests/experiment: a clean environment per test and no experiment left open."""
from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from expq.experiment import active


@pytest.fixture(autouse=True)
def clean_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """No EXPQ_* variable leaks in, the cwd is a temp dir, and no experiment stays open after."""
    for key in list(os.environ):
        if key.startswith("EXPQ_"):
            monkeypatch.delenv(key)
    monkeypatch.chdir(tmp_path)
    yield
    for experiment in active.open_experiments():
        experiment.close()
