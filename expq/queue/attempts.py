"""One record per attempt of a job, kept in the run directory: the retry budget is counted from them."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass, fields, replace
from enum import Enum
from typing import Any

from expq._fs import atomic_write, ensure_dir, make_dir
from expq.queue.paths import RunPaths

__all__ = ["Outcome", "Attempt", "finish_attempt", "read_attempts", "failures",
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
    """Every readable attempt record, oldest first; a torn record (power loss) is skipped."""
    try:
        names = [n for n in (p.name for p in run.attempts.iterdir()) if n.endswith(".json") and n[:-5].isdigit()]
    except FileNotFoundError:
        return []
    attempts = []
    for name in sorted(names, key=lambda n: int(n[:-5])):
        try:
            attempts.append(Attempt.from_dict(json.loads((run.attempts / name).read_bytes())))
        except (ValueError, TypeError, KeyError):
            continue
    return attempts


def next_attempt_number(run: RunPaths) -> int:
    """One more than the highest attempt recorded (a job is claimed by one worker at a time)."""
    try:
        numbers = [int(n[:-5]) for n in os.listdir(run.attempts) if n.endswith(".json") and n[:-5].isdigit()]
    except FileNotFoundError:
        return 1
    return max(numbers, default=0) + 1


def finish_attempt(run: RunPaths, attempt: Attempt, **changes: Any) -> Attempt:
    """Record how an attempt ended and return the updated record. (While it runs, its record is
    its lease: one file fewer per job.)"""
    ended = replace(attempt, **changes)
    try:  # one syscall on the common path (the first attempt's end), not ensure_dir's three
        make_dir(run.attempts)
    except FileExistsError:
        pass
    except FileNotFoundError:
        ensure_dir(run.attempts)
    atomic_write(run.attempt(ended.number), json.dumps(ended.to_dict(), separators=(",", ":")), durable=False)
    return ended


def _budget_floor(run: RunPaths) -> int:
    try:
        return int((run.attempts / "reset").read_text())
    except (FileNotFoundError, ValueError):
        return 0


def failures(run: RunPaths) -> int:
    """Attempts that spent a retry since the last ``expq retry``."""
    floor = _budget_floor(run)
    return sum(1 for a in read_attempts(run) if a.number > floor and a.outcome in SPENDS_RETRY)


def reset_budget(run: RunPaths) -> None:
    """``expq retry`` grants a fresh retry budget: failures before this point no longer count."""
    attempts = read_attempts(run)
    ensure_dir(run.attempts)
    atomic_write(run.attempts / "reset", str(attempts[-1].number if attempts else 0), durable=False)
