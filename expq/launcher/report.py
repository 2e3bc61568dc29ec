"""Collecting what ``status`` and ``show`` display: one record per job, from the files the queue,
the worker and cancel write.

Counting comes from directory listings alone. A record needs the job's spec and, once it ran, its
latest attempt or its ``result.json``, so only the jobs that are shown are read: ``expq status`` on
100,000 finished jobs reads a few dozen files. Every file may be absent or torn (a worker killed
mid-write, a power loss); an unreadable one is treated as absent.
"""
from __future__ import annotations

import os
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from expq._fs import read_json_object
from expq.errors import InputError, NotFound
from expq.queue.attempts import read_attempts
from expq.queue.claim import dependency_block
from expq.queue.lease import read_lease
from expq.queue.paths import job_id_of
from expq.queue.spec import JobSpec
from expq.queue.states import FINISHED, State
from expq.queue.store import JobQueue
from expq.queue.workers import live_workers

__all__ = ["Query", "Snapshot", "Workers", "collect", "record", "show", "RECENT_FINISHED"]

RECENT_FINISHED = 10
RECENT_WINDOW = 200  # newest finished ids per state among which the most recently finished are found
PENDING_SHOWN = 50


@dataclass(frozen=True)
class Query:
    """Which jobs to list. Default: the active ones plus the ``RECENT_FINISHED`` last finished."""

    ids: tuple[int, ...] = ()
    states: tuple[str, ...] = ()
    experiment: str | None = None
    everything: bool = False


@dataclass
class Snapshot:
    counts: dict[str, int]
    jobs: list[dict[str, Any]]
    hidden: int = 0  # jobs that match the filters but were left out of the default view
    workers: int = 0


class Workers:
    """The live workers' GPU counts, read once per snapshot."""

    def __init__(self, queue: JobQueue, now: float) -> None:
        self.gpus = [len(g) if isinstance(g := info.get("gpus"), list) else 0
                     for info in live_workers(queue.paths, now)]

    def why_waiting(self, gpus: int) -> str:
        if not self.gpus:
            return "no live worker"
        if gpus > max(self.gpus):
            return f"needs {gpus} GPU{'s' if gpus != 1 else ''} (largest worker has {max(self.gpus)})"
        return ""


def _pending_reason(queue: JobQueue, spec: JobSpec, workers: Workers) -> str:
    block = dependency_block(queue, spec)
    if block is not None:
        verdict, dep = block
        return f"after {dep}" if verdict == "wait" else f"after {dep}, which did not succeed"
    return workers.why_waiting(spec.gpus)


def record(queue: JobQueue, state: State, spec: JobSpec, workers: Workers | None, now: float) -> dict[str, Any]:
    """The ``status --json`` record of one job (also the row of the table)."""
    run = queue.paths.run(spec.run_dir)
    rec: dict[str, Any] = {
        "id": spec.id, "state": state.value, "experiment": spec.experiment, "name": spec.name,
        "command": list(spec.command), "config": spec.config, "gpus": [], "gpus_requested": spec.gpus,
        "attempts": 0, "exit_code": None, "signal": None, "reason": "", "run_dir": str(run.dir),
        "submitted_at": spec.submitted_at, "started_at": None, "finished_at": None, "duration": None,
        "elapsed": None, "host": None, "priority": spec.priority, "after": list(spec.after),
        "retries": spec.retries, "timeout": spec.timeout, "slurm_job": None, "cwd": spec.cwd, "user": spec.user,
    }
    if state is State.PENDING:
        attempts = read_attempts(run) if _maybe_ran(run.attempts) else []
        rec["attempts"] = attempts[-1].number if attempts else 0
        if workers is not None:
            rec["reason"] = _pending_reason(queue, spec, workers)
        return rec
    if state is State.RUNNING:
        lease = read_lease(queue.paths, spec.id)  # a running attempt's record is its lease
        attempts = [lease.attempt] if lease is not None else read_attempts(run)
        if attempts:
            last = attempts[-1]
            rec.update(attempts=last.number, host=last.host, gpus=list(last.gpus), started_at=last.started_at,
                       slurm_job=last.slurm_job or None, elapsed=max(0.0, now - last.started_at))
        return rec
    result = read_json_object(run.result)
    if result is None:  # torn or not yet written: fall back on the attempt records
        attempts = read_attempts(run)
        if attempts:
            last = attempts[-1]
            result = {"attempts": last.number, "host": last.host, "gpus": list(last.gpus),
                      "started_at": last.started_at, "finished_at": last.finished_at, "exit_code": last.exit_code,
                      "signal": last.signal, "reason": last.reason, "slurm_job": last.slurm_job}
        else:
            result = {}
    for key, kinds in _RESULT_TYPES.items():
        value = result.get(key)
        if isinstance(value, kinds) and not isinstance(value, bool) and value != "":
            rec[key] = value  # a value of another type (a foreign or damaged file) is left out
    if rec["duration"] is None and rec["started_at"] is not None and rec["finished_at"] is not None:
        rec["duration"] = max(0.0, rec["finished_at"] - rec["started_at"])
    rec["elapsed"] = rec["duration"]
    return rec


_RESULT_TYPES: dict[str, tuple[type, ...]] = {
    "attempts": (int,), "exit_code": (int,), "signal": (str, int), "reason": (str,), "host": (str,), "gpus": (list,),
    "started_at": (int, float), "finished_at": (int, float), "duration": (int, float), "slurm_job": (str,)}


def _maybe_ran(attempts_dir: Path) -> bool:
    # a requeued job shows its attempt count; a never-run one costs one failed stat
    return attempts_dir.is_dir()


def _read_spec(queue: JobQueue, state: State, name: str) -> tuple[State, JobSpec] | None:
    """The spec of a listed job; it may have moved on since the listing, or be malformed."""
    try:
        return state, queue.read(state, name)
    except FileNotFoundError:
        try:
            return queue.get(job_id_of(name))
        except NotFound:
            return None
    except InputError:
        return None


def _recent(queue: JobQueue, listing: dict[State, list[str]], limit: int) -> list[tuple[State, str]]:
    """The ``limit`` most recently finished jobs.

    The rename into a finished state is the moment a job ended, and it sets the file's ctime. Only
    the newest ``RECENT_WINDOW`` ids of each finished state are stat-ed (finished names sort by id),
    so this costs a few hundred stats however many jobs have finished.
    """
    stamped = []
    for state in FINISHED:
        for name in listing[state][-RECENT_WINDOW:]:
            try:
                stamped.append((os.stat(queue.paths.state_dir(state) / name).st_ctime, job_id_of(name), state, name))
            except FileNotFoundError:
                continue
    stamped.sort()
    return [(state, name) for _, _, state, name in stamped[-limit:]]


def collect(queue: JobQueue, query: Query, now: float | None = None) -> Snapshot:
    """Counts per state and the records the query selects, sorted by id.

    With no ids, states or ``everything`` asked for, the view is: every running job, the first
    ``PENDING_SHOWN`` pending ones in the order they will run, and the ``RECENT_FINISHED`` most
    recently finished; ``Snapshot.hidden`` counts the rest.

    Raises:
        NotFound: one of ``query.ids`` is no job of this queue.
    """
    now = time.time() if now is None else now
    listing = {state: queue.list_names(state) for state in State}
    counts = {state.value: len(names) for state, names in listing.items()}
    wanted = [State(s) for s in query.states] if query.states else list(State)
    chosen: list[tuple[State, str]]
    hidden = 0
    if query.ids:
        where = {job_id_of(n): (s, n) for s, names in listing.items() for n in names}
        missing = [job for job in query.ids if job not in where]
        if missing:
            raise NotFound("job", missing[0])
        chosen = [where[job] for job in dict.fromkeys(query.ids) if where[job][0] in wanted]
    elif query.everything or query.states:
        chosen = [(s, n) for s in wanted for n in listing[s]]
    elif query.experiment is None:
        pending = listing[State.PENDING]
        chosen = [(State.RUNNING, n) for n in listing[State.RUNNING]]
        chosen += [(State.PENDING, n) for n in pending[:PENDING_SHOWN]]
        recent = _recent(queue, listing, RECENT_FINISHED)
        chosen += recent
        hidden = sum(counts.values()) - len(chosen)
    else:  # an experiment's view: its active jobs, then its newest finished ones until enough are found
        chosen = [(s, n) for s in (State.RUNNING, State.PENDING) for n in listing[s]]
        chosen += _finished_of(queue, listing, query.experiment, RECENT_FINISHED)
    workers = Workers(queue, now)
    jobs = []
    for state, name in chosen:
        found = _read_spec(queue, state, name)
        if found is None or (query.experiment is not None and found[1].experiment != query.experiment):
            continue
        jobs.append(record(queue, found[0], found[1], workers, now))
    jobs.sort(key=lambda rec: rec["id"])
    return Snapshot(counts=counts, jobs=jobs, hidden=hidden, workers=len(workers.gpus))


def _finished_of(queue: JobQueue, listing: dict[State, list[str]], experiment: str,
                 limit: int) -> list[tuple[State, str]]:
    finished = [(s, n) for s in FINISHED for n in listing[s]]
    out: list[tuple[State, str]] = []
    for state, name in sorted(finished, key=lambda item: item[1], reverse=True):
        found = _read_spec(queue, state, name)
        if found is not None and found[1].experiment == experiment:
            out.append((state, name))
            if len(out) == limit:
                break
    return out


def show(queue: JobQueue, job_id: int) -> dict[str, Any]:
    """Everything known about one job: its record, spec, paths, attempts and result.

    Raises:
        NotFound: no job has this id.
    """
    state, spec = queue.get(job_id)
    run = queue.paths.run(spec.run_dir)
    now = time.time()
    return {
        "version": 1,
        "job": record(queue, state, spec, Workers(queue, now) if state is State.PENDING else None, now),
        "spec": spec.to_dict(),
        "paths": {"run_dir": str(run.dir), "stdout": str(run.stdout), "stderr": str(run.stderr),
                  "config": str(run.config), "env": str(run.env), "result": str(run.result),
                  "job": str(run.job)},
        "attempts": [a.to_dict() for a in read_attempts(run)],
        "result": read_json_object(run.result),
    }


def finished_ids(queue: JobQueue, ids: Iterable[int]) -> dict[int, State]:
    """Which of ``ids`` have finished, from three listings (for ``submit --wait``)."""
    wanted = set(ids)
    out: dict[int, State] = {}
    for state in (State.DONE, State.FAILED, State.CANCELLED):
        for name in queue.list_names(state):
            job = job_id_of(name)
            if job in wanted:
                out[job] = state
    return out
