"""``result.json``: how a job ended, one typed, versioned record whoever writes it (the worker after
an attempt, the reaper for a lost one, cancel, a failed dependency), written atomically and last."""
from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from expq._fs import atomic_write
from expq.queue.attempts import Attempt, Outcome
from expq.queue.states import State

__all__ = ["RESULT_VERSION", "Result", "write_result", "read_result",
           "gpu_shape_key"]

RESULT_VERSION = 1
MAX_RESULT_BYTES = 1 << 20


def gpu_shape_key(gpus: int, gpu_mem: int | None) -> str:
    """Jobs with the same GPU needs wait for the same reason: the key of that reason."""
    return f"{gpus}:{gpu_mem or 0}"


@dataclass(frozen=True)
class Result:
    """The end of a job. Fields about the last attempt are None for a job that never ran."""

    job_id: int
    state: State
    reason: str = ""
    attempts: int = 0
    outcome: str | None = None
    exit_code: int | None = None
    signal: str | None = None
    host: str | None = None
    worker_id: str | None = None
    slurm_job: str | None = None
    gpus: tuple[str, ...] = ()
    started_at: float | None = None
    finished_at: float | None = None
    duration: float | None = None
    peak_rss_bytes: int | None = None
    peak_gpu_mem_bytes: int | None = None  # the most its processes held on its GPUs, as sampled; None: not sampled
    warnings: tuple[str, ...] = ()  # e.g. "config keys never read: lrate" (issue 14)

    @classmethod
    def of_attempt(cls, job_id: int, state: State, attempt: Attempt, peak_rss_bytes: int,
                   peak_gpu_mem_bytes: int | None = None, warnings: tuple[str, ...] = ()) -> Result:
        """The job ended with this attempt (done, failed, cancelled or timed out while running)."""
        finished = attempt.finished_at or attempt.started_at
        return cls(job_id, state, attempt.reason, attempt.number, attempt.outcome.value, attempt.exit_code,
                   attempt.signal, attempt.host, attempt.worker_id, attempt.slurm_job, attempt.gpus,
                   attempt.started_at, finished, round(finished - attempt.started_at, 6), peak_rss_bytes,
                   peak_gpu_mem_bytes, warnings)

    @classmethod
    def without_run(cls, job_id: int, state: State, reason: str, attempts: int, finished_at: float) -> Result:
        """The job ended without an attempt of its own: cancelled, a dependency failed, a worker lost."""
        return cls(job_id, state, reason, attempts, finished_at=finished_at)

    def attempt(self) -> Attempt | None:
        """The attempt that ended the job (``of_attempt`` in reverse); None for a job ended without
        one of its own (``without_run``) or a record that lacks what an attempt needs."""
        if self.outcome is None or self.host is None or self.worker_id is None or self.started_at is None:
            return None
        try:
            outcome = Outcome(self.outcome)
        except ValueError:
            return None
        return Attempt(self.attempts, self.host, self.worker_id, self.started_at, self.gpus, self.slurm_job or "",
                       outcome, self.finished_at, self.exit_code, self.signal, self.reason)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"version": RESULT_VERSION}
        for f in fields(self):
            data[f.name] = getattr(self, f.name)
        data["state"] = self.state.value
        data["gpus"] = list(self.gpus)
        data["warnings"] = list(self.warnings)
        return data

    @classmethod
    def from_dict(cls, data: Any) -> Result:
        """Rebuild a record; unknown keys (a newer writer's) are ignored, wrong types refused.

        Raises:
            ValueError: not a result record of a version this reader knows.
        """
        if not isinstance(data, dict) or data.get("version", RESULT_VERSION) != RESULT_VERSION:
            raise ValueError("not a version-1 result record")
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        try:
            values["state"] = State(values["state"])
            values["gpus"] = tuple(str(g) for g in values.get("gpus") or ())
            values["warnings"] = tuple(str(w) for w in values.get("warnings") or ())
            result = cls(**values)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a valid result record: {exc}") from None
        if not isinstance(result.job_id, int) or not isinstance(result.attempts, int):
            raise ValueError("not a valid result record: job_id and attempts must be whole numbers")
        return result


def write_result(path: Path, result: Result) -> None:
    """Not fsynced: after a power loss a job may run again, and a torn result is never trusted
    (readers treat unparseable JSON as absent). The fsync would cost ~0.4 ms per job."""
    atomic_write(path, json.dumps(result.to_dict(), separators=(",", ":")), durable=False)


def read_result(path: Path) -> Result | None:
    """The record at ``path``, or None when absent, torn, foreign or not a regular small file."""
    from expq.errors import InputError
    from expq.queue.store import read_queue_file

    try:
        raw, _ = read_queue_file(path, limit=MAX_RESULT_BYTES)
        return Result.from_dict(json.loads(raw))
    except (OSError, InputError, ValueError, RecursionError):
        return None
