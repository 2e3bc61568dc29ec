"""The one place that knows where every file of the queue and of a run directory lives."""
from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from expq.contract import (
    ATTEMPTS_DIR,
    CONFIG_YAML,
    EXPERIMENTS_DIR,
    GPU_USAGE_JSON,
    JOB_JSON,
    QUEUE_DIR,
    RESULT_JSON,
    RUN_ENV,
    STDERR_LOG,
    STDOUT_LOG,
    resolve_root,
)
from expq.queue.spec import MAX_PRIORITY, JobSpec
from expq.queue.states import State

__all__ = ["QueuePaths", "RunPaths", "resolve_root", "job_id_of", "listed_id", "claim_of", "pending_bucket", "bucket_gpus",
           "AFTER", "FORMAT_VERSION"]

FORMAT_VERSION = 2  # 1: pending/<prio>-<id>.json; 2: pending/<bucket>/<prio>/<id>.json, dependents/, changed
AFTER = "after"  # the bucket of jobs whose dependencies have not all finished: no worker lists it


def job_id_of(file_name: str) -> int:
    """The job id in a queue file name: ``00000042.json`` (finished), ``cpu/09999/00000042.json``
    (pending: its bucket and inverted priority first), ``00000042-1f3a9c0e.json`` (running: the
    claim token last) or ``09999-00000042.json`` (pending in format 1, before buckets).

    Raises:
        ValueError: the name is not a queue file name.
    """
    base = file_name.rpartition("/")[2]
    stem = base[:-5] if base.endswith(".json") else ""
    first, dash, second = stem.partition("-")
    if not dash:
        return _digits(first)
    return _digits(second) if len(first) == _PRIORITY_WIDTH else _digits(first)


def listed_id(name: str) -> int:
    """The id in a listed name; -1 for a stray file (``notes.json``), which matches no job."""
    try:
        return job_id_of(name)
    except ValueError:
        return -1


def claim_of(file_name: str) -> str:
    """The claim token of a running job's file name (``""`` for any other name)."""
    if "/" in file_name:
        return ""
    stem = file_name[:-5] if file_name.endswith(".json") else file_name
    first, _, token = stem.partition("-")
    return "" if len(first) == _PRIORITY_WIDTH else token


def pending_bucket(spec: JobSpec) -> str:
    """The folder of ``pending/`` a runnable job waits in: what decides which workers can take it
    (``cpu``, ``gpu2``, ``gpu1-m6144`` for 6 GiB of GPU memory each), so a worker lists only what
    it could run."""
    if spec.gpus == 0:
        return "cpu"
    return f"gpu{spec.gpus}" if spec.gpu_mem is None else f"gpu{spec.gpus}-m{-(-spec.gpu_mem // (1 << 20))}"


def bucket_gpus(bucket: str) -> int | None:
    """How many GPUs the jobs of a bucket need (None for ``after`` or a name that is not a bucket)."""
    if bucket == "cpu":
        return 0
    head = bucket.partition("-")[0]
    digits = head[3:]
    return int(digits) if head.startswith("gpu") and digits.isascii() and digits.isdigit() else None


def _digits(text: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise ValueError(f"not a queue file name: {text!r}")
    return int(text)


_PRIORITY_WIDTH = 5


@dataclass(frozen=True)
class QueuePaths:
    """Paths under ``<root>/queue``: one directory per state plus leases, workers, cancel requests.

    Immutable, so every directory is computed once (``cached_property``): workers ask for them per job.
    """

    root: Path

    @cached_property
    def queue(self) -> Path:
        return self.root / QUEUE_DIR

    @cached_property
    def experiments(self) -> Path:
        return self.root / EXPERIMENTS_DIR

    def state_dir(self, state: State) -> Path:
        return self._state_dirs[state]

    @cached_property
    def _state_dirs(self) -> dict[State, Path]:
        return {state: self.queue / state.value for state in State}

    @cached_property
    def incoming(self) -> Path:
        """Where specs are written before their rename into ``pending/`` makes them visible."""
        return self.queue / "incoming"

    @cached_property
    def leases(self) -> Path:
        return self.queue / "leases"

    @cached_property
    def workers(self) -> Path:
        return self.queue / "workers"

    @cached_property
    def cancel_requests(self) -> Path:
        return self.queue / "cancel"

    @cached_property
    def rejected(self) -> Path:
        """Malformed or untrusted specs, moved aside with a ``.reason`` file beside each."""
        return self.queue / "rejected"

    @cached_property
    def fingerprints(self) -> Path:
        """The index of what each job ran (``submit --skip-existing``), sharded by hash."""
        return self.queue / "fingerprints"

    @cached_property
    def removed(self) -> Path:
        """Jobs on their way out (``expq rm``): renamed here first, their files deleted after."""
        return self.queue / "removed"

    @cached_property
    def stop_requests(self) -> Path:
        """``expq workers stop``: one file per worker asked to stop."""
        return self.queue / "stop"

    @cached_property
    def dependents(self) -> Path:
        """``dependents/<dep>/<id>``: job ``id`` waits in ``pending/after/`` for job ``dep`` to end."""
        return self.queue / "dependents"

    def dependents_of(self, job_id: int) -> Path:
        return self.dependents / f"{job_id:08d}"

    @cached_property
    def changed(self) -> Path:
        """Its mtime moves whenever jobs become claimable (a submit, a requeue, a promotion): the one
        stat by which workers learn that their listing of ``pending/`` is out of date."""
        return self.queue / "changed"

    @cached_property
    def format_file(self) -> Path:
        return self.queue / "format"

    @cached_property
    def id_counter(self) -> Path:
        return self.queue / "next_id"

    @cached_property
    def id_lock(self) -> Path:
        return self.queue / "next_id.lock"

    def all_dirs(self) -> list[Path]:
        states = [self.state_dir(s) for s in State]
        return [self.queue, *states, self.incoming, self.leases, self.workers, self.cancel_requests,
                self.rejected, self.dependents, self.experiments]

    @staticmethod
    def file_name(state: State, job_id: int, priority: int = 0, claim: str = "", bucket: str = "cpu") -> str:
        """Pending names are ``<bucket>/<inverted priority>/<id>.json``: sorting by the last two
        parts gives the schedule, and a lookup by id costs one stat per bucket and priority in use.

        A running job's name ends in the token of the claim that moved it there: every later move of
        it (finish, recovery) renames that exact name, so an actor acting on a claim that has since
        ended (a stalled worker, a second reaper) finds nothing to move instead of another claim.
        """
        if state is State.PENDING:
            return f"{bucket}/{MAX_PRIORITY - priority:0{_PRIORITY_WIDTH}d}/{job_id:08d}.json"
        if state is State.RUNNING and claim:
            return f"{job_id:08d}-{claim}.json"
        return f"{job_id:08d}.json"

    def job_file(self, state: State, job_id: int, priority: int = 0, claim: str = "", bucket: str = "cpu") -> Path:
        return self.state_dir(state) / self.file_name(state, job_id, priority, claim, bucket)

    def pending_file(self, spec: JobSpec, waiting: bool = False) -> Path:
        """Where a pending job is: in its bucket, or in ``after/`` while it waits for dependencies."""
        bucket = AFTER if waiting else pending_bucket(spec)
        return self.job_file(State.PENDING, spec.id, spec.priority, bucket=bucket)

    def lease_file(self, job_id: int, claim: str = "") -> Path:
        """The lease of one claim; it is created before the job's child starts and removed when the
        attempt ends, so a lease without a live owner means the attempt needs recovering."""
        return self.leases / (f"{job_id:08d}-{claim}.json" if claim else f"{job_id:08d}.json")

    def cancel_file(self, job_id: int) -> Path:
        return self.cancel_requests / f"{job_id:08d}"

    def worker_file(self, worker_id: str) -> Path:
        return self.workers / f"{worker_id}.json"

    def gpu_reasons_file(self, worker_id: str) -> Path:
        """Beside a worker's record: why jobs wait for its GPUs, ``{gpu_shape_key: reason}``."""
        return self.workers / f"{worker_id}.reasons"

    def run(self, run_dir: str) -> RunPaths:
        """The files of a job's run directory, given the spec's root-relative ``run_dir``."""
        return RunPaths(self.root / run_dir)


@dataclass(frozen=True)
class RunPaths:
    """Files the worker writes in a run directory (the experiment API writes beside them)."""

    dir: Path

    @cached_property
    def job(self) -> Path:
        return self.dir / JOB_JSON

    @cached_property
    def config(self) -> Path:
        return self.dir / CONFIG_YAML

    @cached_property
    def env(self) -> Path:
        return self.dir / RUN_ENV

    @cached_property
    def stdout(self) -> Path:
        return self.dir / STDOUT_LOG

    @cached_property
    def stderr(self) -> Path:
        return self.dir / STDERR_LOG

    @cached_property
    def gpu_usage(self) -> Path:
        """What a running job's processes hold on its GPUs, as its worker last sampled it."""
        return self.dir / GPU_USAGE_JSON

    @cached_property
    def result(self) -> Path:
        return self.dir / RESULT_JSON

    @cached_property
    def attempts(self) -> Path:
        return self.dir / ATTEMPTS_DIR

    def attempt(self, number: int) -> Path:
        return self.attempts / f"{number}.json"
