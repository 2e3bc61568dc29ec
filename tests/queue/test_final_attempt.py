"""The attempt that ends a job lives in ``result.json`` only; the readers see it like any other."""
from __future__ import annotations

from pathlib import Path

from expq.queue.attempts import Attempt, Outcome, finish_attempt, next_attempt_number, read_attempts, reset_budget
from expq.queue.paths import RunPaths
from expq.queue.result import Result, write_result
from expq.queue.states import State


def _ended(number: int, outcome: Outcome, code: int | None) -> Attempt:
    return Attempt(number, "box", "box-1-abc", 100.0 + number, ("0",), "77_1", outcome, 101.5 + number, code,
                   None, "" if code == 0 else f"exit code {code}")


def test_a_result_gives_back_the_attempt_it_was_made_of():
    attempt = _ended(3, Outcome.FAILED, 2)
    result = Result.of_attempt(9, State.FAILED, attempt, 1024)
    assert result.attempt() == attempt
    assert Result.from_dict(result.to_dict()).attempt() == attempt


def test_a_result_without_an_attempt_of_its_own_gives_none():
    assert Result.without_run(9, State.CANCELLED, "cancelled by user", 2, 5.0).attempt() is None


def test_readers_see_the_final_attempt_after_the_recorded_ones(tmp_path: Path):
    run = RunPaths(tmp_path)
    assert read_attempts(run) == [] and next_attempt_number(run) == 1
    first = finish_attempt(run, _ended(1, Outcome.RUNNING, None), outcome=Outcome.PREEMPTED, finished_at=102.0)
    final = _ended(2, Outcome.DONE, 0)
    write_result(run.result, Result.of_attempt(9, State.DONE, final, 0))
    assert read_attempts(run) == [first, final] and next_attempt_number(run) == 3


def test_a_result_older_than_the_recorded_attempts_is_not_counted_twice(tmp_path: Path):
    run = RunPaths(tmp_path)
    write_result(run.result, Result.of_attempt(9, State.FAILED, _ended(1, Outcome.FAILED, 1), 0))
    reset_budget(run)  # expq retry: the result's attempt is copied before the job runs again
    assert run.attempt(1).exists()
    lost = finish_attempt(run, _ended(2, Outcome.RUNNING, None), outcome=Outcome.LOST, finished_at=103.0)
    assert [a.number for a in read_attempts(run)] == [1, 2] and read_attempts(run)[-1] == lost
    assert next_attempt_number(run) == 3
