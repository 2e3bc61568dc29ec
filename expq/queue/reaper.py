"""Finding and recovering jobs whose worker is gone.

``judge`` is a pure function of the running jobs, their leases, this host and ``now``; ``recover``
applies one verdict. A job is requeued while its retry budget lasts, failed after; a job whose
worker wrote ``result.json`` but died before moving it is finalised, not run again.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from expq.queue.attempts import Outcome, failures, finish_attempt, read_attempts
from expq.queue.lease import Lease
from expq.queue.spec import JobSpec
from expq.queue.states import FINISHED, State
from expq.queue.store import JobQueue

__all__ = ["RunningJob", "Verdict", "judge", "recover", "running_jobs"]


@dataclass(frozen=True)
class RunningJob:
    job_id: int
    lease: Lease | None
    running_since: float


@dataclass(frozen=True)
class Verdict:
    job_id: int
    lease: Lease | None
    reason: str


def judge(jobs: Iterable[RunningJob], host: str, now: float, my_worker_id: str,
          pid_alive: Callable[[int, float], bool], stale: Callable[[str], bool],
          claim_grace: float) -> list[Verdict]:
    """The running jobs whose owner is gone: a dead pid on this host, a still heartbeat elsewhere,
    or no lease at all ``claim_grace`` seconds after the claim."""
    verdicts = []
    for job in jobs:
        lease = job.lease
        if lease is None:
            if now - job.running_since > claim_grace:
                verdicts.append(Verdict(job.job_id, None, "its worker died while starting it"))
        elif lease.worker_id == my_worker_id:
            continue
        elif lease.host == host:
            if not pid_alive(lease.pid, lease.pid_started):
                verdicts.append(Verdict(job.job_id, lease, f"worker {lease.worker_id} (pid {lease.pid}) died"))
        elif stale(lease.worker_id):
            verdicts.append(Verdict(job.job_id, lease,
                                    f"worker {lease.worker_id} on {lease.host} stopped sending heartbeats"))
    return verdicts


def running_jobs(queue: JobQueue, read_lease: Callable[[int], Lease | None],
                 first_seen: Callable[[int], float]) -> list[RunningJob]:
    """The running jobs with their leases; a job without one is dated by ``first_seen``, the moment
    this process first saw it so, by its own clock (no file time from another host's clock)."""
    jobs = []
    for job_id in queue.list_ids(State.RUNNING):
        lease = read_lease(job_id)
        jobs.append(RunningJob(job_id, lease, first_seen(job_id) if lease is None else 0.0))
    return jobs


def recover(queue: JobQueue, verdict: Verdict) -> State | None:
    """Requeue, fail or finalise an orphaned job; returns its new state, None if another worker did it."""
    try:
        spec = queue.read(State.RUNNING, queue.paths.file_name(State.RUNNING, verdict.job_id))
    except FileNotFoundError:
        return None
    run = queue.paths.run(spec.run_dir)
    attempts = read_attempts(run)
    # Only a worker that got as far as its lease can have written this attempt's result; without a
    # lease, a result.json is an earlier attempt's (a retried job) and must not end this one.
    finished = _finished_result(run.result, verdict.lease.attempt.number) if verdict.lease else None
    if finished is not None:
        target = finished
    else:
        if verdict.lease is not None:
            finish_attempt(run, verdict.lease.attempt, outcome=Outcome.LOST, finished_at=time.time(),
                           reason=verdict.reason)
            attempts = read_attempts(run)
        target = State.PENDING if failures(run) <= spec.retries else State.FAILED
    if not queue.move(spec, State.RUNNING, target):
        return None
    queue.paths.lease_file(spec.id).unlink(missing_ok=True)
    if target is State.FAILED:
        _write_lost_result(queue, spec, verdict.reason, len(attempts))
    return target


def _finished_result(result_path: Path, attempt: int) -> State | None:
    """The final state recorded by the worker for ``attempt``, if it got that far."""
    try:
        result = json.loads(result_path.read_bytes())
        state = State(result["state"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return None
    return state if state in FINISHED and result.get("attempts") == attempt else None


def _write_lost_result(queue: JobQueue, spec: JobSpec, reason: str, attempts: int) -> None:
    queue.write_outcome(spec, {"state": State.FAILED.value, "reason": f"{reason}; no retries left",
                               "attempts": attempts, "exit_code": None, "finished_at": time.time()})
