"""Durations: one parser for every option that takes a time (``--timeout 2h30m``, ``--poll 0.5``)."""
from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from expq.launcher.argtypes import MAX_SECONDS, parse_duration, positive_seconds
from expq.launcher.cli import main
from expq.queue.states import State
from expq.queue.store import JobQueue


@pytest.mark.parametrize(("text", "seconds"), [
    ("90", 90.0), ("0.5", 0.5), (".5", 0.5), ("1e3", 1000.0), ("90s", 90.0), ("2m", 120.0), ("2h30m", 9000.0),
    ("1d", 86400.0), ("1.5h", 5400.0), ("2w", 1_209_600.0), ("1d2h3m4s", 93_784.0), (" 3m ", 180.0),
])
def test_durations_read(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds
    assert positive_seconds(text) == seconds


SYNTAX = "is not a duration: expected seconds (90) or a duration such as 90s, 2h30m, 1d"
RANGE = "is out of range: expected a duration above 0 and at most 100 years"


@pytest.mark.parametrize(("text", "message"), [
    ("", f"'' {SYNTAX}"), ("2x", f"'2x' {SYNTAX}"), ("30m2h", f"'30m2h' {SYNTAX}"), ("1h1h", f"'1h1h' {SYNTAX}"),
    ("h", f"'h' {SYNTAX}"), ("-5", f"'-5' {SYNTAX}"), ("nan", f"'nan' {SYNTAX}"), ("inf", f"'inf' {SYNTAX}"),
    ("1 h", f"'1 h' {SYNTAX}"), ("\u0661s", f"'\u0661s' {SYNTAX}"), ("0", f"'0' {RANGE}"), ("0s", f"'0s' {RANGE}"),
    ("1e400", f"'1e400' {RANGE}"), ("36501d", f"'36501d' {RANGE}"),
])
def test_bad_durations_are_one_line(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_duration(text)
    assert str(info.value) == message
    with pytest.raises(argparse.ArgumentTypeError, match=f"^{message}$".replace("(", r"\(").replace(")", r"\)")):
        positive_seconds(text)


def test_the_limit_itself_is_accepted() -> None:
    assert parse_duration(f"{MAX_SECONDS / 86400:.0f}d") == MAX_SECONDS


def test_submit_timeout_takes_a_duration(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "root"
    assert main(["--root", str(root), "submit", "--timeout", "2h30m", "--", "true"]) == 0
    assert capsys.readouterr().out == "1\n"
    _, spec = JobQueue(root).get(1)
    assert spec.timeout == 9000.0


def test_a_bad_duration_is_one_line_and_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "root"
    assert main(["--root", str(root), "submit", "--", "true"]) == 0
    capsys.readouterr()
    before = sorted(p.name for p in (root / "queue" / "pending").iterdir())
    assert main(["--root", str(root), "submit", "--timeout", "2hours", "--", "true"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.startswith("expq: error: argument --timeout: '2hours' is not a duration") and err.count("\n") == 1
    assert sorted(p.name for p in (root / "queue" / "pending").iterdir()) == before
    assert JobQueue(root).list_ids(State.PENDING) == [1]
