"""Finding and recovering jobs whose worker is gone.

``judge`` is a pure function of the running claims, their leases, this host and ``now``; ``recover``
applies one verdict. Every step of a recovery acts on one claim only (the running file and the lease
are named by the claim's token). What is left of the lost attempt is killed, and seen gone, first;
then the recovery is committed by removing that claim's lease, which exactly one process wins: two
reapers with the same verdict, or a stale one, can never take a later claim of the same job. A job is requeued while its retry budget lasts, failed after; a job whose
worker wrote ``result.json`` but died before moving it is finalised, not run again.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from expq.errors import InputError
from expq.queue.attempts import Outcome, failures, finish_attempt, read_attempts
from expq.queue.lease import Lease
from expq.queue.paths import claim_of, job_id_of
from expq.queue.result import Result, read_result
from expq.queue.spec import JobSpec
from expq.queue.states import FINISHED, State
from expq.queue.store import JobQueue

__all__ = ["RunningJob", "Verdict", "judge", "recover", "running_jobs"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunningJob:
    job_id: int
    lease: Lease | None
    running_since: float
    claim: str = ""


@dataclass(frozen=True)
class Verdict:
    job_id: int
    lease: Lease | None
    reason: str
    claim: str = ""


def judge(jobs: Iterable[RunningJob], host: str, now: float, my_worker_id: str,
          pid_alive: Callable[[int, float], bool], stale: Callable[[str], bool],
          claim_grace: float) -> list[Verdict]:
    """The running claims whose owner is gone: on this host a dead pid or a heartbeat that stopped
    moving (a frozen worker), elsewhere a heartbeat that stopped moving, or no lease at all
    ``claim_grace`` seconds after the claim."""
    verdicts = []
    for job in jobs:
        lease = job.lease
        if lease is None:
            if now - job.running_since > claim_grace:
                verdicts.append(Verdict(job.job_id, None, "its worker died while starting it", job.claim))
        elif lease.worker_id == my_worker_id:
            continue
        elif lease.host == host and not pid_alive(lease.pid, lease.pid_started):
            verdicts.append(Verdict(job.job_id, lease, f"worker {lease.worker_id} (pid {lease.pid}) died", job.claim))
        elif stale(lease.worker_id):
            where = "" if lease.host == host else f" on {lease.host}"
            verdicts.append(Verdict(job.job_id, lease, f"worker {lease.worker_id}{where} stopped sending heartbeats",
                                    job.claim))
    return verdicts


def running_jobs(queue: JobQueue, read_lease: Callable[[int, str], Lease | None],
                 first_seen: Callable[[str], float]) -> list[RunningJob]:
    """The running claims with their leases; a claim without one is dated by ``first_seen`` (keyed by
    its file name), the moment this process first saw it so, by its own clock (no file time from
    another host's clock)."""
    jobs = []
    for name in queue.list_names(State.RUNNING):
        try:
            job_id = job_id_of(name)
        except ValueError:
            continue
        claim = claim_of(name)
        lease = read_lease(job_id, claim)
        jobs.append(RunningJob(job_id, lease, first_seen(name) if lease is None else 0.0, claim))
    return jobs


def recover(queue: JobQueue, verdict: Verdict, kill: Callable[[JobSpec, Lease], bool] | None = None) -> State | None:
    """Requeue, fail or finalise an orphaned claim; returns its new state, None if it was not this
    process's to recover (another reaper won, the owner finished it meanwhile, or the lost attempt's
    processes are still dying: the next heartbeat tries again).

    ``kill(spec, lease)`` ends what is left of the lost attempt on this host and says whether it is
    all gone. It runs before the commit, so a reaper that dies halfway leaves the lease for the next
    one to kill again; killing an attempt twice is harmless, and a kill names its attempt, never a
    later one.
    """
    name = queue.paths.file_name(State.RUNNING, verdict.job_id, claim=verdict.claim)
    try:
        spec = queue.read(State.RUNNING, name)
    except FileNotFoundError:
        return None
    except InputError as exc:
        queue.reject(State.RUNNING, name, str(exc))
        return None
    run = queue.paths.run(spec.run_dir)
    target = State.PENDING
    if verdict.lease is not None:
        lease_file = queue.paths.lease_file(spec.id, verdict.claim)
        if not lease_file.exists():  # recovered already, or finished by its owner
            return None
        if kill is not None and not kill(spec, verdict.lease):
            log.warning("job %d: processes of its lost attempt are still dying; recovery waits", spec.id)
            return None
        try:  # the commit: one unlink wins; a frozen owner now finds itself fenced
            lease_file.unlink()
        except FileNotFoundError:
            return None
        attempt = verdict.lease.attempt
        finished = _finished_result(run.result, attempt.number)
        if finished is not None:
            target = finished
        else:
            try:
                finish_attempt(run, attempt, outcome=Outcome.LOST, finished_at=time.time(), reason=verdict.reason)
            except OSError as exc:  # a full disk must not keep the job stuck: it moves on without the record
                log.error("job %d: could not record its lost attempt (%s)", spec.id, exc)
            target = State.PENDING if failures(run) <= spec.retries else State.FAILED
    if not queue.move(spec, State.RUNNING, target, claim=verdict.claim):
        return None
    if target is State.FAILED:
        queue.write_outcome(spec, Result.without_run(spec.id, State.FAILED, f"{verdict.reason}; no retries left",
                                                     len(read_attempts(run)), time.time()))
    return target


def _finished_result(result_path: Path, attempt: int) -> State | None:
    """The final state recorded by the worker for ``attempt``, if it got that far."""
    result = read_result(result_path)
    if result is None or result.state not in FINISHED or result.attempts != attempt:
        return None
    return result.state
