"""Errors keep their class, message, fields and exit code through pickling (they cross processes)."""
from __future__ import annotations

import pickle

import pytest

from expq.errors import ExpqError, InputError, InsecureQueue, InvalidTransition, NotFound


@pytest.mark.parametrize(("error", "fields"), [
    (ExpqError("plain failure"), {}),
    (InputError("bad --set"), {}),
    (NotFound("job", 42), {"what": "job", "value": 42}),
    (InsecureQueue("/q/pending", "writable by others"), {"path": "/q/pending", "reason": "writable by others"}),
    (InvalidTransition(7, "done", "running"), {"job_id": 7, "current": "done", "target": "running"}),
])
def test_errors_round_trip_through_pickle(error: ExpqError, fields: dict[str, object]) -> None:
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is type(error)
    assert str(copy) == str(error)
    assert copy.exit_code == error.exit_code
    for name, value in fields.items():
        assert getattr(copy, name) == value


def test_error_text_and_exit_codes() -> None:
    assert str(NotFound("job", 42)) == "no such job: 42"
    assert NotFound("job", 42).exit_code == 2
    assert str(InvalidTransition(7, "done", "running")) == "job 7 cannot go from done to running"
    assert InvalidTransition(7, "done", "running").exit_code == 1
