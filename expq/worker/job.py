"""Starting one job (lease, run directory, env file, logs, child) and finishing it (attempt record,
result, state). Every failure here ends that job with a readable reason, never the worker: a full
disk puts the job back unharmed (``DiskFull``), a claim that ended meanwhile is let go (``ClaimLost``)."""
from __future__ import annotations

import errno
import logging
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from expq._fs import MODES, make_private_dir, write_file
from expq.config import dump_config
from expq.errors import InputError
from expq.queue.attempts import Attempt, Outcome, failures, finish_attempt, next_attempt_number
from expq.queue.control import clear_cancel_request
from expq.queue.lease import Lease, lease_is_mine, write_lease
from expq.queue.paths import RunPaths
from expq.queue.result import Result, write_result
from expq.queue.spec import JobSpec
from expq.queue.states import State
from expq.queue.store import JobQueue
from expq.worker.child import ExitStatus, JobTree, spawn
from expq.worker.envfile import env_file_text, job_environment
from expq.worker.oom import oom_reason, ran_out_of_gpu_memory

__all__ = ["RunningJob", "Identity", "StartError", "ClaimLost", "DiskFull", "start_job", "fail_to_start",
           "put_back", "end_processes", "finish_job", "target_state", "is_disk_full"]

log = logging.getLogger(__name__)
_LOG_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC
_DISK_FULL = frozenset({errno.ENOSPC, errno.EDQUOT})


def is_disk_full(exc: BaseException) -> bool:
    return isinstance(exc, OSError) and exc.errno in _DISK_FULL


@dataclass(frozen=True)
class Identity:
    """Who is running jobs: recorded in attempts, leases and results."""

    worker_id: str
    host: str
    pid: int
    pid_started: float
    slurm_job: str = ""


@dataclass
class RunningJob:
    spec: JobSpec
    run: RunPaths
    attempt: Attempt
    pid: int
    tree: JobTree
    reservation: list[tuple[str, int]]
    deadline: float | None
    stopping: Outcome | None = None
    stop_reason: str = ""
    kill_at: float | None = None
    fenced: bool = False
    lease_stamp: tuple[int, int] = (0, 0)
    claim: str = ""
    warnings: tuple[str, ...] = ()  # what the job's end adds to its result (e.g. config keys never read)
    peak_gpu_mem_bytes: int | None = None  # the most its processes held on its GPUs, as sampled

    def is_fenced(self, queue: JobQueue) -> bool:
        """Whether the job was taken from this worker (its lease is gone or someone else's)."""
        self.fenced = self.fenced or not lease_is_mine(queue.paths, self.spec.id, self.lease_stamp, self.claim)
        return self.fenced


class ClaimLost(Exception):
    """The claim ended before its child started: this worker stalled after claiming, and the job
    was recovered (and maybe claimed again) meanwhile. Nothing of it is this worker's any more."""


class DiskFull(Exception):
    """The disk filled up while preparing a job: it goes back to pending, no retry spent."""

    def __init__(self, cause: OSError) -> None:
        super().__init__(str(cause))
        self.cause = cause


class StartError(Exception):
    """A job could not be started; the message is the reason recorded for it."""

    def __init__(self, reason: str, attempt: Attempt | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.attempt = attempt


def start_job(queue: JobQueue, spec: JobSpec, claim: str, reservation: list[tuple[str, int]], who: Identity,
              base_env: dict[str, str], now: float) -> RunningJob:
    """Write the lease, prepare the run directory and start the child, in that order: no child ever
    runs without a lease that names its attempt.

    Raises:
        StartError: the job cannot run (bad cwd, command not found, unsafe run directory); its attempt
            is recorded. DiskFull: no space to prepare it. ClaimLost: the claim ended meanwhile.
    """
    run = queue.paths.run(spec.run_dir)
    gpus = tuple(gpu for gpu, _ in reservation)
    try:
        fresh = make_private_dir(run.dir)  # a run directory made now holds no attempt and no files yet
        attempt = Attempt(1 if fresh else next_attempt_number(run), who.host, who.worker_id, now, gpus,
                          who.slurm_job)
        stamp = write_lease(queue.paths, Lease(spec.id, attempt, who.pid, who.pid_started, claim))
    except FileExistsError:
        raise ClaimLost() from None
    except InputError as exc:
        raise StartError(str(exc)) from None
    except OSError as exc:
        if is_disk_full(exc):
            raise DiskFull(exc) from None
        raise StartError(f"cannot prepare run directory {run.dir}: {exc.strerror or exc}") from None

    def still_mine() -> bool:
        """Checked right before the spawn: this worker may have stalled since claiming (a frozen
        worker's claim is recovered by others), and then it must not start a second execution."""
        return (lease_is_mine(queue.paths, spec.id, stamp, claim)
                and queue.paths.job_file(State.RUNNING, spec.id, claim=claim).exists())

    try:
        pid = _launch(queue, spec, claim, run, attempt, reservation, base_env, still_mine, fresh)
    except ClaimLost:
        if lease_is_mine(queue.paths, spec.id, stamp, claim):
            queue.paths.lease_file(spec.id, claim).unlink(missing_ok=True)
        raise
    except OSError as exc:
        if is_disk_full(exc):
            queue.paths.lease_file(spec.id, claim).unlink(missing_ok=True)
            raise DiskFull(exc) from None
        raise StartError(_describe_start_failure(spec, exc), attempt) from None
    deadline = now + spec.timeout if spec.timeout else None
    tree = JobTree(pid, pid, str(run.dir), attempt=attempt.number)
    return RunningJob(spec, run, attempt, pid, tree, reservation, deadline, lease_stamp=stamp, claim=claim)


def _launch(queue: JobQueue, spec: JobSpec, claim: str, run: RunPaths, attempt: Attempt,
            reservation: list[tuple[str, int]], base_env: dict[str, str], still_mine: Callable[[], bool],
            fresh: bool) -> int:
    if fresh or not run.config.exists():
        _link_spec(queue.paths.job_file(State.RUNNING, spec.id, claim=claim), run.job, spec)
        write_file(run.config, dump_config(spec.config).encode())
    variables = job_environment(spec, run, queue.root, attempt.number, attempt.gpus)
    write_file(run.env, env_file_text(variables).encode())
    header = (f"=== expq job {spec.id} attempt {attempt.number} on {attempt.host} "
              f"at {time.strftime('%Y-%m-%d %H:%M:%S', time.localtime(attempt.started_at))} ===\n").encode()
    out = _open_log(run.stdout, fresh)
    try:
        err = _open_log(run.stderr, fresh)
        try:
            os.write(err, header)
            if attempt.number > 1:
                # Only a retry separates its output in stdout.log: a first attempt's stdout.log is
                # exactly what the program printed, and its writes stay block-aligned (a header in
                # front made 1 GiB of output 7% slower to write than a shell redirection).
                os.write(out, header)
            if not still_mine():
                raise ClaimLost()
            return spawn(spec.command, spec.cwd, {**base_env, **variables}, out, err,
                         [fd for _, fd in reservation])
        finally:
            os.close(err)
    finally:
        os.close(out)


def _open_log(path: Path, fresh: bool) -> int:
    """A log opened for the child to append to. In a run directory an earlier attempt used, the job
    may have left anything in the log's place: a FIFO there fails the start (ENXIO) instead of
    blocking the worker, and the descriptor the child gets is a blocking one again."""
    if fresh:
        return os.open(path, _LOG_FLAGS, MODES.file)
    fd = os.open(path, _LOG_FLAGS | os.O_NONBLOCK, MODES.file)
    os.set_blocking(fd, True)
    return fd


def _link_spec(queue_file: Path, job_json: Path, spec: JobSpec) -> None:
    """``job.json`` is a hard link to the immutable queue file: one syscall instead of a write."""
    try:
        os.link(queue_file, job_json)
    except FileExistsError:
        return
    except OSError:  # another filesystem, or links not supported: copy instead
        write_file(job_json, spec.to_json())


def _describe_start_failure(spec: JobSpec, exc: OSError) -> str:
    if isinstance(exc, NotADirectoryError) and exc.filename == spec.cwd:
        return f"working directory {spec.cwd} does not exist"
    if isinstance(exc, FileNotFoundError) and exc.filename in (spec.command[0], None):
        return f"command not found: {spec.command[0]}"
    if isinstance(exc, FileNotFoundError) and exc.filename == spec.cwd:
        return f"working directory {spec.cwd} does not exist"
    if isinstance(exc, PermissionError):
        return f"permission denied: {exc.filename or spec.command[0]}"
    return f"cannot start {spec.command[0]}: {exc.strerror or exc}"


def fail_to_start(queue: JobQueue, spec: JobSpec, claim: str, reason: str, attempt: Attempt | None,
                  now: float) -> None:
    """End a job that never ran as failed (no retry: the same command would fail the same way)."""
    run = queue.paths.run(spec.run_dir)
    try:
        if attempt is not None:
            ended = replace(attempt, outcome=Outcome.FAILED, finished_at=now, reason=reason)
            write_result(run.result, Result.of_attempt(spec.id, State.FAILED, ended, 0))
        else:
            queue.write_outcome(spec, Result.without_run(spec.id, State.FAILED, reason, 0, now))
    except OSError as exc:
        log.error("job %d: could not record its failure (%s)", spec.id, exc)
    queue.move(spec, State.RUNNING, State.FAILED, claim=claim)
    queue.paths.lease_file(spec.id, claim).unlink(missing_ok=True)
    log.warning("job %d failed to start: %s", spec.id, reason)


def put_back(queue: JobQueue, spec: JobSpec, claim: str) -> bool:
    """Return a claimed job that never started to pending, spending nothing (its lease, if any, goes)."""
    queue.paths.lease_file(spec.id, claim).unlink(missing_ok=True)
    return queue.move(spec, State.RUNNING, State.PENDING, claim=claim)


def target_state(job: RunningJob, outcome: Outcome) -> State:
    """Where the job goes after this attempt; retries are spent only by real failures."""
    if outcome is Outcome.DONE:
        return State.DONE
    if outcome is Outcome.CANCELLED:
        return State.CANCELLED
    if outcome is Outcome.PREEMPTED:
        return State.PENDING
    if job.stopping is Outcome.FAILED:  # failed on purpose (submit --strict): running it again changes nothing
        return State.FAILED
    # this attempt spends a retry too; it is not recorded yet (where depends on the answer)
    return State.PENDING if failures(job.run) + 1 <= job.spec.retries else State.FAILED


def end_processes(job: RunningJob) -> None:
    """The job is over: whatever it left behind dies with it. A normal exit costs one killpg; a
    stopped job gets the full search, for grandchildren that escaped into their own session."""
    if job.stopping is not None:
        job.tree.signal(signal.SIGKILL)
    else:
        job.tree.kill_group()


def finish_job(queue: JobQueue, job: RunningJob, status: ExitStatus, now: float) -> State | None:
    """Record how the child ended and move the job on; None when the job was taken from this worker
    (checked here too: a worker that stalled past its lease may reap a child before its heartbeat)."""
    if job.is_fenced(queue):
        log.warning("job %d was taken over by another worker; its result here is dropped", job.spec.id)
        return None
    if job.stopping is not None:
        outcome, reason = job.stopping, job.stop_reason
    elif status.ok:
        outcome, reason = Outcome.DONE, ""
    else:
        outcome = Outcome.FAILED
        reason = f"exit code {status.exit_code}" if status.signal is None else f"killed by {status.signal}"
        if job.attempt.gpus and ran_out_of_gpu_memory(job.run.stderr):
            reason = oom_reason(reason, job.spec.gpu_mem)
    ended = replace(job.attempt, outcome=outcome, finished_at=now, exit_code=status.exit_code, signal=status.signal,
                    reason=reason)
    target = target_state(job, outcome)
    if target is State.PENDING:
        finish_attempt(job.run, ended)
    else:  # the attempt that ends the job is recorded in its result only
        write_result(job.run.result, Result.of_attempt(job.spec.id, target, ended, status.peak_rss_bytes,
                                                       job.peak_gpu_mem_bytes, job.warnings))
    if not queue.move(job.spec, State.RUNNING, target, claim=job.claim):
        log.warning("job %d was no longer running when it ended; left as it is", job.spec.id)
        return None
    queue.paths.lease_file(job.spec.id, job.claim).unlink(missing_ok=True)
    clear_cancel_request(queue, job.spec.id)
    return target

