"""One record per attempt of a job, kept in the run directory: the retry budget is counted from them.

An attempt that ends the job (done, failed, cancelled) is recorded in ``result.json`` only, which
holds every field of an attempt: one file and one folder fewer per job. ``attempts/<n>.json`` holds
the attempts after which the job ran again (a failure that was retried, a preemption, a lost
worker), and an ``expq retry`` copies the result's attempt there before the job can run again, so
a later result never overwrites the only record of an attempt. ``read_attempts`` gives both."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields, replace
from enum import Enum
from typing import Any

from expq._fs import atomic_write, ensure_dir, make_dir
from expq.errors import InputError
from expq.queue.paths import RunPaths

__all__ = ["Outcome", "Attempt", "finish_attempt", "read_attempts", "final_attempt", "failures",
           "reset_budget", "next_attempt_number", "SPENDS_RETRY"]


class Outcome(str, Enum):
    """How one attempt ended; a job's state is decided from the outcome and the retry budget."""

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    TIMEOUT = "timeout"
    CANCELLED = "cancelled"
    PREEMPTED = "preempted"
    LOST = "lost"


SPENDS_RETRY = frozenset({Outcome.FAILED, Outcome.TIMEOUT, Outcome.LOST})
_RECORD_LIMIT = 1 << 20  # bytes: an attempt record is a few hundred; a bigger file is not one expq wrote


@dataclass(frozen=True)
class Attempt:
    number: int
    host: str
    worker_id: str
    started_at: float
    gpus: tuple[str, ...] = ()
    slurm_job: str = ""
    outcome: Outcome = Outcome.RUNNING
    finished_at: float | None = None
    exit_code: int | None = None
    signal: str | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["outcome"] = self.outcome.value
        data["gpus"] = list(self.gpus)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Attempt:
        data = dict(data)
        data["outcome"] = Outcome(data["outcome"])
        data["gpus"] = tuple(data.get("gpus", ()))
        return cls(**data)


def read_attempts(run: RunPaths) -> list[Attempt]:
    """Every readable attempt record, oldest first, the one that ended the job included (from
    ``result.json``); a torn record (power loss) is skipped."""
    from expq.queue.store import read_queue_file  # store builds on attempts: imported here, not above

    attempts = []
    for _, name in sorted(_recorded(run)):
        try:  # in the run directory, where the job may put anything: a FIFO is refused, not waited on
            attempts.append(Attempt.from_dict(json.loads(read_queue_file(run.attempts / name, _RECORD_LIMIT)[0])))
        except (OSError, InputError, ValueError, TypeError, KeyError, RecursionError):
            continue
    final = final_attempt(run)
    if final is not None and (not attempts or final.number > attempts[-1].number):
        attempts.append(final)
    return attempts


def final_attempt(run: RunPaths) -> Attempt | None:
    """The attempt that ended the job, as ``result.json`` records it (None: no result, or one
    written without an attempt of its own: cancelled while pending, a failed dependency)."""
    from expq.queue.result import read_result  # result.py builds on Attempt: imported here, not above

    result = read_result(run.result)
    return result.attempt() if result is not None else None


def next_attempt_number(run: RunPaths) -> int:
    """One more than the highest attempt recorded (a job is claimed by one worker at a time)."""
    final = final_attempt(run)
    return max([number for number, _ in _recorded(run)] + [final.number if final is not None else 0]) + 1


def _recorded(run: RunPaths) -> list[tuple[int, str]]:
    """(number, file name) of the ``attempts/<n>.json`` files (any other name there is not an attempt)."""
    try:
        return [(int(n[:-5]), n) for n in os.listdir(run.attempts) if n.endswith(".json") and n[:-5].isdigit()]
    except FileNotFoundError:
        return []


def finish_attempt(run: RunPaths, attempt: Attempt, **changes: Any) -> Attempt:
    """Record how an attempt after which the job runs again ended, and return the updated record.
    (While it runs, its record is its lease; the attempt that ends the job is kept in its result.)"""
    ended = replace(attempt, **changes)
    try:  # one syscall on the common path (the first attempt's end), not ensure_dir's three
        make_dir(run.attempts)
    except FileExistsError:
        pass
    except FileNotFoundError:
        ensure_dir(run.attempts)
    atomic_write(run.attempt(ended.number), _encode(ended), durable=False)
    return ended


def _encode(attempt: Attempt) -> str:
    return json.dumps(attempt.to_dict(), separators=(",", ":"))


def _budget_floor(run: RunPaths) -> int:
    from expq.queue.store import read_queue_file

    try:
        return int(read_queue_file(run.attempts / "reset", _RECORD_LIMIT)[0])
    except (OSError, InputError, ValueError):
        return 0


def failures(run: RunPaths) -> int:
    """Attempts that spent a retry since the last ``expq retry``."""
    floor = _budget_floor(run)
    return sum(1 for a in read_attempts(run) if a.number > floor and a.outcome in SPENDS_RETRY)


def reset_budget(run: RunPaths) -> None:
    """``expq retry`` grants a fresh retry budget: failures before this point no longer count. The
    attempt that ended the job is copied into ``attempts/`` first: the next result replaces this one."""
    attempts = read_attempts(run)
    ensure_dir(run.attempts)
    if attempts and not run.attempt(attempts[-1].number).exists():
        atomic_write(run.attempt(attempts[-1].number), _encode(attempts[-1]), durable=False)
    atomic_write(run.attempts / "reset", str(attempts[-1].number if attempts else 0), durable=False)
