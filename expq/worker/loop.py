"""The worker: claims jobs into free slots, supervises their children, keeps its heartbeat, reaps
orphans of dead workers, and stops cleanly on SIGTERM. ``step(now)`` is one iteration; ``run()``
loops over it and sleeps until a child exits, a signal arrives or the poll interval passes.

Every disk write sits inside a boundary that costs at most one job. A full disk pauses claiming
(running jobs go on, a job that could not start goes back to pending unharmed, an ended job whose
record could not be written is kept and recorded once space returns), and so does a queue folder
that became unsafe or broken; the worker logs the condition once and resumes by itself."""
from __future__ import annotations

import functools
import itertools
import json
import logging
import os
import signal
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from expq._fs import atomic_write, write_file
from expq.errors import InsecureQueue
from expq.queue.attempts import Outcome
from expq.queue.claim import Claim, Claimer
from expq.queue.lease import HeartbeatWatch, Lease, read_lease
from expq.queue.paths import AFTER, bucket_gpus, claim_of, job_id_of, listed_id
from expq.queue.reaper import judge, recover, running_jobs
from expq.queue.security import owned_by_me
from expq.queue.spec import JobSpec
from expq.queue.states import State
from expq.queue.store import JobQueue
from expq.queue.workers import clear_stop, stop_requested, this_host
from expq.worker import cgroup
from expq.worker.cgroup import JobCgroups
from expq.worker.child import ExitStatus, JobTree, pid_alive, process_started, reap_exited
from expq.worker.config_check import check_config_reads
from expq.worker.gpuprobe import PROBE_TIMEOUT
from expq.worker.gpus import GpuLocks, default_lock_dir
from expq.worker.gpuusage import GpuSampler
from expq.worker.host_reaper import HostReaper
from expq.worker.job import (
    ClaimLost,
    DiskFull,
    Identity,
    RunningJob,
    StartError,
    end_processes,
    fail_to_start,
    finish_job,
    is_disk_full,
    put_back,
    start_job,
)
from expq.worker.lost import end_lost_attempt, lost_attempt_cgroup
from expq.worker.placement import DEFAULT_FOREIGN_MEM, GpuPolicy, Placer
from expq.worker.signals import SignalFlags
from expq.worker.start_turn import end_turn
from expq.worker.wakeup import ChangeWatch

__all__ = ["Worker", "WorkerOptions", "identity"]

log = logging.getLogger(__name__)

STRAY_TERM_WAIT = 0.5  # seconds to wait for the worker's own stop signal after a child died of SIGTERM
PROBE_INTERVAL = 1.0  # seconds between checks whether a full disk has space again
PROBE_BYTES = 64 << 10  # what a probe must be able to write before claiming resumes
MAX_IDLE_POLL = 2.0  # seconds between an idle worker's polls at most (the change signal wakes it sooner)
CANCELS_SETTLE = 2.0  # seconds after which a change of the cancel folder's mtime counts as seen


@dataclass(frozen=True)
class WorkerOptions:
    gpus: tuple[str, ...] = ()
    slots: int | None = None
    drain: bool = False
    max_jobs: int | None = None
    poll: float = 0.5
    heartbeat: float = 5.0
    lease_timeout: float = 60.0
    grace: float = 10.0
    lock_dir: Path = field(default_factory=default_lock_dir)
    jobs_per_gpu: int = 1
    foreign_mem: int = DEFAULT_FOREIGN_MEM
    ignore_foreign: bool = False
    probe_timeout: float = PROBE_TIMEOUT

    @property
    def slot_count(self) -> int:
        """``--jobs-per-gpu`` jobs per GPU by default (1: one job per GPU); ``--slots`` for CPU jobs."""
        return self.slots if self.slots is not None else max(1, len(self.gpus) * self.jobs_per_gpu)

    @property
    def gpu_policy(self) -> GpuPolicy:
        return GpuPolicy(self.jobs_per_gpu, self.foreign_mem, self.ignore_foreign, self.probe_timeout)


def identity(environ: Mapping[str, str]) -> Identity:
    """This worker's name, host (``EXPQ_HOST`` overrides, for tests of several hosts) and SLURM task."""
    host = this_host()
    pid = os.getpid()
    array = environ.get("SLURM_ARRAY_JOB_ID")
    slurm = f"{array}_{environ.get('SLURM_ARRAY_TASK_ID')}" if array else environ.get("SLURM_JOB_ID", "")
    return Identity(f"{host}-{pid}-{os.urandom(3).hex()}", host, pid, process_started(pid), slurm)


class Worker:
    """One worker process's state: its slots and GPU locks, its running jobs, its heartbeat."""

    def __init__(self, queue: JobQueue, options: WorkerOptions, who: Identity | None = None) -> None:
        self.queue = queue
        self.options = options
        self.who = who or identity(os.environ)
        self.locks = GpuLocks(options.gpus, options.lock_dir)
        self.placer = Placer(options.gpus, self.locks, options.gpu_policy, str(queue.root))
        self.gpu_sampler = GpuSampler(self.placer, self.queue.paths.gpu_reasons_file(self.who.worker_id))
        self.claimer = Claimer(queue, serves=self._serves)
        self.watch = HeartbeatWatch(options.lease_timeout)
        self.jobs: dict[int, RunningJob] = {}
        self.base_env = dict(os.environ)  # copied once: rebuilding it per job costs ~0.1 ms
        self.started = 0
        self.stopping = False
        self.flags: SignalFlags | None = None
        self._stops_handled = 0
        self._next_heartbeat = 0.0
        self._idle = False
        self._unleased_since: dict[str, float] = {}  # running claims seen without a lease, by local clock
        self._leases: dict[tuple[int, str], Lease] = {}  # leases read by earlier scans, by (job, claim)
        self._awaiting_recovery = False  # a claim without a lease that the reaper will requeue
        self._said_waiting = False  # the log says why this draining worker has not exited yet
        self.paused: str | None = None  # why claiming stopped (a full disk, a broken queue folder)
        self._paused_by_disk = False
        self._next_probe = 0.0
        self._unrecorded: list[tuple[RunningJob, ExitStatus]] = []  # ended, record not yet on disk
        self._dying_cgroups: list[Path] = []
        self.cgroups: JobCgroups | None = None
        self.reaper = HostReaper(options.lock_dir, self.who.host, queue.root, self.who.worker_id)
        self.change_watch = ChangeWatch(queue.paths.changed)
        self._idle_polls = 0
        self._cancels_seen: int | None = None  # the cancel folder's mtime when every request was last looked at

    # -- lifecycle --------------------------------------------------------------------------

    def open(self) -> None:
        """Check the queue is safe to serve, then announce this worker.

        Raises:
            InsecureQueue: others can write to the root (an empty queue is created where there is none).
        """
        # Workers may start before the first submit (a SLURM array, a new box), or while one is
        # creating the queue's folders: whatever is missing is created (privately), never refused.
        fresh = not self.queue.exists()
        self.queue.create()
        if fresh:
            log.info("created an empty queue at %s", self.queue.root)
        self.queue.check_secure()
        self._write_worker_file()
        self.placer.start(time.time())
        self.cgroups = JobCgroups.open(self.who.worker_id)
        log.info("worker %s serving %s with %d slot(s), GPUs [%s]; jobs tracked by %s", self.who.worker_id,
                 self.queue.root, self.options.slot_count, ",".join(self.options.gpus),
                 "a cgroup each" if self.cgroups else "process group, descendants and environment (no cgroup v2)")

    def close(self) -> None:
        """Kill what still runs (only after an internal error) and withdraw the worker file."""
        for job in list(self.jobs.values()):
            job.tree.signal(signal.SIGKILL)
        if self._unrecorded:
            self._retry_unrecorded(time.time())
        if self.cgroups is not None:
            self.cgroups.close()
        self.reaper.close()
        self.change_watch.close()
        self.gpu_sampler.close()
        self.queue.paths.worker_file(self.who.worker_id).unlink(missing_ok=True)
        clear_stop(self.queue.paths, self.who.worker_id)

    def run(self) -> int:
        """Serve the queue until stopped, drained or ``--max-jobs`` reached; returns the exit code."""
        self.open()
        self.flags = SignalFlags()
        self.flags.install()
        try:
            while self.step(time.time()):
                end_turn()  # its first jobs run: the next worker on this host may start (see start_turn)
                if self._idle and self.change_watch.arm():
                    continue  # a change that came before the watch would not wake it: look once more
                self.flags.wait(self._sleep_time(time.time()), self.change_watch.fd)
                self.change_watch.drain()
        finally:
            self.flags.uninstall()
            self.close()
        if self.options.drain:
            self._log_left_behind()
        log.info("worker %s exits after %d job(s)", self.who.worker_id, self.started)
        return 0

    def _log_left_behind(self) -> None:
        """A draining worker leaves jobs it can never run pending: say which and why, for up to 20 of
        them (the buckets it does not serve are looked into only that far: 32 workers leaving a
        100,000-job backlog must not each list and sort it on their way out)."""
        gpus = len(self.options.gpus)
        unserved = [(folder, prefix) for folder, prefix in self.queue.pending_folders()
                    if prefix.partition("/")[0] != AFTER and not self._serves(prefix.partition("/")[0])]
        shown = 0
        for folder, prefix in unserved:
            with os.scandir(folder) as entries:
                bucket = prefix.partition("/")[0]
                needs = bucket_gpus(bucket)
                for entry in itertools.islice(entries, 20 - shown):
                    job = listed_id(entry.name)
                    if job < 0:  # a stray file, no job
                        continue
                    if needs is None:  # a folder put there by hand, or by a newer expq
                        log.warning("job %d stays pending: pending/%s is no bucket this expq knows", job, bucket)
                    else:
                        log.warning("job %d stays pending: it needs %d GPU(s), this worker has %d", job, needs, gpus)
                    shown += 1
        for spec in self.claimer.passed_over[: max(0, 20 - shown)]:
            if not self.placer.possible(spec):
                log.warning("job %d stays pending: no GPU of this worker has the memory it asks for", spec.id)

    def step(self, now: float) -> bool:
        """One iteration; False once the worker should exit."""
        ended = self._reap_children()
        self._await_stop_signal(ended)
        self._handle_signals(now, ended)
        self._supervise(now)
        if now >= self._next_heartbeat:
            self._heartbeat(now)
        if self._unrecorded:
            self._retry_unrecorded(now)
        if self.paused is not None and self._paused_by_disk and now >= self._next_probe:
            self._probe_disk(now)
        if self._awaiting_recovery and self.options.drain:
            self._recheck_unleased()  # before claiming: a claim requeued meanwhile is claimed below
        if not self.stopping:
            self._fill_slots(now)
        if self.jobs and self.options.gpus:
            self.gpu_sampler.sample(self.jobs.values(), now)
        if ended:
            # Recorded after the free slots are refilled, so this bookkeeping overlaps the next
            # child's start-up instead of delaying it; then claim again for jobs it unblocked.
            self._handle_signals(now, ended)  # a stop signal that arrived meanwhile still counts for them
            self._record_ended(ended, now)
            if not self.stopping:
                self._fill_slots(now)
        return not self._done()

    def _done(self) -> bool:
        if self.jobs or self._unrecorded:
            return False
        if self.stopping or (self.options.max_jobs is not None and self.started >= self.options.max_jobs):
            return True
        # A draining worker also waits for claims that died before their lease: they come back.
        return self.options.drain and self._idle and not self._awaiting_recovery and self.paused is None

    def _recheck_unleased(self) -> None:
        """Look again at just the claims the last scan saw without a lease. Almost always that was
        another worker between its claim and its lease (a few milliseconds), and a draining worker
        must not stay a whole heartbeat for it: 32 drain workers ending a sweep each lingered up to
        ``--heartbeat`` seconds after the last job. One that keeps lacking its lease died while
        starting the job; the reaper requeues it after ``--lease-timeout``, and this worker runs it."""
        running = self.queue.paths.state_dir(State.RUNNING)
        still = {name: since for name, since in self._unleased_since.items()  # a torn lease counts as none
                 if (running / name).exists() and self._lease_of(job_id_of(name), claim_of(name)) is None}
        if not still:
            self._said_waiting = False
        elif self._idle and not self.jobs and not self._said_waiting:
            log.info("waiting for %d claimed job(s) without a lease before exiting (a worker starting them, "
                     "or one that died doing so: recovered after --lease-timeout)", len(still))
            self._said_waiting = True
        self._unleased_since = still
        self._awaiting_recovery = bool(still)

    def _sleep_time(self, now: float) -> float:
        """Until the next poll, heartbeat, deadline or kill; an idle worker with nothing running
        polls less and less often (up to ``MAX_IDLE_POLL``), woken early by the change signal."""
        self._idle_polls = self._idle_polls + 1 if self._idle and not self.jobs else 0
        poll = min(max(self.options.poll, MAX_IDLE_POLL), self.options.poll * 2 ** min(self._idle_polls, 8))
        wake = [now + poll, self._next_heartbeat]
        for job in self.jobs.values():
            wake += [t for t in (job.deadline, job.kill_at) if t is not None]
        return max(0.0, min(wake) - now)

    # -- claiming and starting --------------------------------------------------------------

    def _fill_slots(self, now: float) -> None:
        self.placer.new_pass()
        while self.paused is None and len(self.jobs) < self.options.slot_count and not self._max_reached():
            claimed = self.claimer.claim(lambda spec: self._reserve(spec, now), self.locks.release)
            if claimed is None:
                self._idle = (not any(self.placer.possible(spec) for spec in self.claimer.passed_over)
                              and not (self.options.drain and self._jobs_wait_for_dependencies()))
                break
            self._idle = False
            self._start(claimed, now)
        self.gpu_sampler.publish_reasons(self.placer.reasons)

    def _serves(self, bucket: str) -> bool:
        """Whether this worker could ever run the jobs of a pending bucket (it has enough GPUs)."""
        gpus = bucket_gpus(bucket)
        return gpus is not None and gpus <= len(self.options.gpus)

    def _jobs_wait_for_dependencies(self) -> bool:
        """A draining worker stays while jobs wait for dependencies: they may become its to run."""
        after = self.queue.paths.state_dir(State.PENDING) / AFTER
        try:
            for priority in os.listdir(after):
                with os.scandir(after / priority) as entries:
                    if next(entries, None) is not None:  # one entry is enough: never list them all
                        return True
        except OSError:
            return False
        return False

    def _max_reached(self) -> bool:
        return self.options.max_jobs is not None and self.started >= self.options.max_jobs

    def _reserve(self, spec: JobSpec, now: float) -> list[tuple[str, int]] | None:
        """The claimer asks for each runnable candidate: GPUs it can have now (see ``placement``), or None."""
        return self.placer.reserve(spec, now)

    def _start(self, claim: Claim[list[tuple[str, int]]], now: float) -> None:
        spec, reservation, token = claim.spec, claim.reservation, claim.token
        self.started += 1
        now = time.time()  # the step's clock may be late by a recovery: the attempt starts now
        try:
            job = start_job(self.queue, spec, token, reservation, self.who, self.base_env, now)
        except ClaimLost:
            self.started -= 1
            self.locks.release(reservation)
            log.warning("job %d: its claim ended while this worker was stalled; leaving it", spec.id)
            return
        except DiskFull as exc:
            self.started -= 1
            self.locks.release(reservation)
            self._put_back(spec, token)
            self._pause(f"disk full ({exc.cause.strerror or exc.cause})", disk=True, now=now)
            return
        except StartError as exc:
            self.locks.release(reservation)
            fail_to_start(self.queue, spec, token, exc.reason, exc.attempt, now)
            return
        except Exception as exc:  # noqa: BLE001 - per-job boundary: a bug starting one job must not stop the worker
            log.exception("job %d: internal error while starting it", spec.id)
            self.locks.release(reservation)
            try:
                fail_to_start(self.queue, spec, token, f"internal error while starting: {exc!r}", None, now)
            except OSError as again:
                log.error("job %d: could not record the failure either (%s)", spec.id, again)
            return
        if self.cgroups is not None:
            job.tree.cgroup = self.cgroups.add(spec.id, job.attempt.number, job.pid)
        self.jobs[spec.id] = job
        log.debug("job %d started (attempt %d, pid %d, GPUs [%s])", spec.id, job.attempt.number, job.pid,
                  ",".join(job.attempt.gpus))

    def _put_back(self, spec: JobSpec, token: str) -> None:
        try:
            put_back(self.queue, spec, token)
        except OSError as exc:  # left running without a lease: the reaper requeues it after the grace period
            log.error("job %d: could not put it back in the queue (%s)", spec.id, exc)

    # -- pausing: a full disk, a broken or unsafe queue --------------------------------------

    def _pause(self, reason: str, disk: bool, now: float) -> None:
        if self.paused is None:
            log.warning("not claiming jobs: %s; running jobs go on, claiming resumes by itself", reason)
        self.paused, self._paused_by_disk = reason, disk
        self._next_probe = now + PROBE_INTERVAL

    def _resume(self) -> None:
        log.info("claiming jobs again (was: %s)", self.paused)
        self.paused, self._paused_by_disk = None, False

    def _probe_disk(self, now: float) -> None:
        """Resume once a small file can be written where jobs write theirs."""
        self._next_probe = now + PROBE_INTERVAL
        probe = self.queue.paths.workers / f"{self.who.worker_id}.probe"
        try:
            write_file(probe, bytes(PROBE_BYTES))
        except OSError:
            return
        finally:
            probe.unlink(missing_ok=True)
        if not self._unrecorded:
            self._resume()

    def _check_queue(self, now: float) -> None:
        """The queue's folders may change under a running worker: pause while one is unsafe or broken."""
        try:
            self.queue.check_secure()
        except (InsecureQueue, OSError) as exc:
            if not self._paused_by_disk:
                self._pause(str(exc), disk=False, now=now)
            return
        if self.paused is not None and not self._paused_by_disk:
            self._resume()

    # -- supervising ------------------------------------------------------------------------

    def _reap_children(self) -> list[tuple[RunningJob, ExitStatus]]:
        """Collect exited children; their leftovers die and their GPUs are free again at once."""
        ended = []
        by_pid = {job.pid: job_id for job_id, job in self.jobs.items()}
        for pid, status in reap_exited(by_pid):
            job = self.jobs.pop(by_pid[pid])
            end_processes(job)
            self.locks.release(job.reservation)
            if job.tree.cgroup is not None and self.cgroups is not None:
                self.cgroups.discard(job.tree.cgroup)
            ended.append((job, status))
        return ended

    def _record_ended(self, ended: list[tuple[RunningJob, ExitStatus]], now: float) -> None:
        for job, status in ended:
            try:
                check_config_reads(job, status)  # its warnings go into the result; --strict fails the job
                state = finish_job(self.queue, job, status, now)
            except Exception as exc:  # noqa: BLE001 - per-job boundary: a full disk (or a bug) costs this job only
                if is_disk_full(exc):  # kept, with its lease, until its record can be written
                    self._unrecorded.append((job, status))
                    self._pause(f"disk full ({exc})", disk=True, now=now)
                    continue
                log.error("job %d: could not record its end (%r); marking it failed", job.spec.id, exc,
                          exc_info=not isinstance(exc, OSError))
                state = self._fail_unrecorded(job)
            # One line per finished job (the start is DEBUG): what someone watching a worker wants,
            # at ~1% of the cost of a trivial job.
            log.info("job %d %s (%s, %.1f s)", job.spec.id, state.value if state else "dropped",
                     status.signal or f"exit {status.exit_code}", now - job.attempt.started_at)

    def _fail_unrecorded(self, job: RunningJob) -> State | None:
        try:
            moved = self.queue.move(job.spec, State.RUNNING, State.FAILED, claim=job.claim)
            self.queue.paths.lease_file(job.spec.id, job.claim).unlink(missing_ok=True)
        except OSError as exc:
            log.error("job %d: could not move it either (%s); the reaper will", job.spec.id, exc)
            return None
        return State.FAILED if moved else None

    def _retry_unrecorded(self, now: float) -> None:
        """Record the ends that a full disk held back, oldest first, as soon as they fit."""
        waiting, self._unrecorded = self._unrecorded, []
        for job, status in waiting:
            try:
                state = finish_job(self.queue, job, status, now)
            except OSError:
                self._unrecorded.append((job, status))
                continue
            log.info("job %d %s (recorded late: the disk was full)", job.spec.id, state.value if state else "dropped")

    def _handle_signals(self, now: float, ended: Sequence[tuple[RunningJob, ExitStatus]] = ()) -> None:
        if self.flags is None or self.flags.stop_count == self._stops_handled:
            return
        self._stops_handled = self.flags.stop_count
        if not self.stopping:
            self._begin_stop(str(self.flags.last_stop), ended, now)
        else:
            log.info("second stop signal: killing running jobs now")
            for job in self.jobs.values():
                job.tree.signal(signal.SIGKILL)

    def _begin_stop(self, cause: str, ended: Sequence[tuple[RunningJob, ExitStatus]], now: float) -> None:
        """Stop claiming and stop every job gracefully; they are requeued (a signal, or ``expq workers stop``)."""
        if not self.stopping:
            self.stopping = True
            reason = f"worker stopped by {cause}; requeued"
            # SLURM's scancel (and a preemption or time limit) sends SIGTERM to every process of the
            # job step, so a child may die of it just before this worker notices its own: a job that
            # ended unsuccessfully in this same step is requeued with the others, not failed.
            caught = [job for job, status in ended if job.stopping is None and not status.ok]
            for job in caught:
                job.stopping, job.stop_reason = Outcome.PREEMPTED, reason
            log.info("received %s: stopping, requeueing %d running job(s)", cause, len(self.jobs) + len(caught))
            for job in self.jobs.values():
                self._terminate(job, Outcome.PREEMPTED, reason, now)

    def _await_stop_signal(self, ended: Sequence[tuple[RunningJob, ExitStatus]]) -> None:
        """A child killed by a SIGTERM this worker did not send: under SLURM that is scancel, a
        preemption or the time limit signalling the whole job step, and this worker's own SIGTERM is
        a few milliseconds behind. Wait briefly for it, so the job is requeued instead of failed."""
        if self.flags is None or self.stopping:
            return
        if not any(job.stopping is None and status.signal == "SIGTERM" for job, status in ended):
            return
        deadline = time.monotonic() + STRAY_TERM_WAIT
        while self.flags.stop_count == self._stops_handled and time.monotonic() < deadline:
            self.flags.wait(deadline - time.monotonic())

    def _cancel_requested(self, job_id: int) -> bool:
        """A cancel request counts only if this user wrote it (the folder is private; this is the belt)."""
        try:
            return owned_by_me(os.lstat(self.queue.paths.cancel_file(job_id)))
        except FileNotFoundError:
            return False

    def _cancels_may_have_come(self, now: float) -> bool:
        """Whether to look for each running job's cancel request in this step: when the folder of
        requests changed since it was last seen settled (one stat per step instead of one per running
        job: a worker with 32 slots steps once per job end), and at every heartbeat, the net for a
        change that a shared filesystem's attribute cache or a coarse timestamp hides."""
        try:
            mtime = os.stat(self.queue.paths.cancel_requests).st_mtime_ns
        except OSError:
            return True
        if mtime == self._cancels_seen and now < self._next_heartbeat:
            return False
        # a folder changed a moment ago may change again within the same timestamp: not settled yet
        self._cancels_seen = mtime if now - mtime / 1e9 > CANCELS_SETTLE else None
        return True

    def _cancels_for_running_jobs(self, now: float) -> set[int]:
        """The running jobs that have a cancel request, looked for only when requests may have come:
        one listing of the folder (a request lives only while its job runs), not a ``stat`` per job."""
        if not self._cancels_may_have_come(now):
            return set()
        try:
            names = os.listdir(self.queue.paths.cancel_requests)
        except OSError:
            return set()
        listed = {int(name) for name in names if name.isascii() and name.isdigit()}
        return {job for job in listed & self.jobs.keys() if self._cancel_requested(job)}

    def _supervise(self, now: float) -> None:
        if not self.jobs:
            return
        cancelled = self._cancels_for_running_jobs(now)
        for job in self.jobs.values():
            if job.stopping is None:
                if job.spec.id in cancelled:
                    self._terminate(job, Outcome.CANCELLED, "cancelled by user", now)
                elif job.deadline is not None and now >= job.deadline:
                    self._terminate(job, Outcome.TIMEOUT, f"timeout after {job.spec.timeout:g} s", now)
            elif job.kill_at is not None and now >= job.kill_at:
                log.warning("job %d ignored SIGTERM for %g s; sending SIGKILL", job.spec.id, self.options.grace)
                job.tree.signal(signal.SIGKILL)
                job.kill_at = None

    def _terminate(self, job: RunningJob, outcome: Outcome, reason: str, now: float) -> None:
        """TERM the whole tree now and KILL what is left after the grace period."""
        job.stopping, job.stop_reason = outcome, reason
        job.tree.signal(signal.SIGTERM)
        job.kill_at = now + self.options.grace

    # -- heartbeat, fencing and orphans ------------------------------------------------------

    def _touch_heartbeat(self) -> None:
        try:
            os.utime(self.queue.paths.worker_file(self.who.worker_id))
        except FileNotFoundError:
            self._write_worker_file()
        except OSError as exc:  # e.g. a shared filesystem hiccup: the next beat tries again
            log.error("could not refresh the heartbeat: %s", exc)

    def _heartbeat(self, now: float) -> None:
        self._next_heartbeat = now + self.options.heartbeat
        self._touch_heartbeat()
        if not self.stopping and stop_requested(self.queue.paths, self.who.worker_id):
            self._begin_stop("expq workers stop", (), now)
        for job in self.jobs.values():
            if not job.fenced and job.is_fenced(self.queue):
                log.warning("job %d was taken from this worker (lease lost); killing its process tree", job.spec.id)
                job.fenced = True
                job.tree.signal(signal.SIGKILL)
        self._check_queue(now)
        self._dying_cgroups = [path for path in self._dying_cgroups if not cgroup.remove(path)]
        self._dying_cgroups = list(dict.fromkeys(self._dying_cgroups))
        try:
            self._reap_orphans(now)
        except OSError as exc:  # a queue folder vanished or broke: logged by the queue check too
            log.error("could not look for orphaned jobs: %s", exc)

    def _reap_orphans(self, now: float) -> None:
        """Recover the claims of dead or frozen workers, if this worker is its host's reaper (see
        ``host_reaper``); a draining worker also notes claims that wait for recovery (see ``_done``)."""
        reaping = self.reaper.is_mine(lambda worker_id: self.watch.is_stale(self.queue.paths, worker_id, now))
        if not reaping and not self.options.drain:
            return
        jobs = running_jobs(self.queue, self._lease_of, lambda name: self._unleased_since.setdefault(name, now))
        claims = {(job.job_id, job.claim) for job in jobs}
        self._leases = {key: lease for key, lease in self._leases.items() if key in claims}
        unleased = {self.queue.paths.file_name(State.RUNNING, job.job_id, claim=job.claim)
                    for job in jobs if job.lease is None}
        self._unleased_since = {k: v for k, v in self._unleased_since.items() if k in unleased}
        self._awaiting_recovery = bool(unleased)
        if not reaping:
            return
        # Liveness is judged once per worker, not once per lease: 256 running jobs of 32 workers
        # cost 32 checks.
        alive = functools.cache(pid_alive)
        stale = functools.cache(lambda worker_id: self.watch.is_stale(self.queue.paths, worker_id, now))
        verdicts = judge(jobs, self.who.host, now, self.who.worker_id, alive, stale, self.options.lease_timeout)
        for verdict in verdicts:
            local = verdict.lease is not None and verdict.lease.host == self.who.host
            try:
                state = recover(self.queue, verdict, self._kill_orphan if local else None)
            except OSError as exc:  # per-job boundary: a full disk costs this recovery, retried next beat
                log.error("job %d: recovery failed (%s); trying again later", verdict.job_id, exc)
                continue
            if state is not None:
                log.warning("job %d: %s; now %s", verdict.job_id, verdict.reason, state.value)

    def _lease_of(self, job_id: int, claim: str) -> Lease | None:
        """A claim's lease, parsed once: a lease never changes while it exists, so a scan checks with
        one stat that a lease it has read is still there (a removed lease must count as none: a
        reaper killed right after its commit leaves a claim without one) and reads only new ones."""
        lease = self._leases.get((job_id, claim))
        if lease is not None and self.queue.paths.lease_file(job_id, claim).exists():
            return lease
        lease = read_lease(self.queue.paths, job_id, claim)
        if lease is None:
            self._leases.pop((job_id, claim), None)
        else:
            self._leases[job_id, claim] = lease
        return lease

    def _kill_orphan(self, spec: JobSpec, lease: Lease) -> bool:
        """A dead or frozen worker's child may still run here; that attempt's processes, and only
        those, die (and are seen gone) before the job can run again."""
        group = lost_attempt_cgroup(lease.worker_id, spec.id, lease.attempt.number)
        tree = JobTree(0, 0, str(self.queue.paths.run(spec.run_dir).dir), trust_pid=False,
                       attempt=lease.attempt.number, cgroup=group)
        gone = end_lost_attempt(tree, self._touch_heartbeat)
        if gone and group is not None:  # the dead worker's folders go once empty (its own folder last)
            self._dying_cgroups += [group, group.parent]
        return gone

    def _write_worker_file(self) -> None:
        record = {"worker_id": self.who.worker_id, "host": self.who.host, "pid": self.who.pid,
                  "pid_started": self.who.pid_started, "gpus": list(self.options.gpus),
                  "slots": self.options.slot_count, "started_at": time.time(), "slurm_job": self.who.slurm_job}
        try:
            atomic_write(self.queue.paths.worker_file(self.who.worker_id), json.dumps(record), durable=False)
        except OSError as exc:  # a full disk: the next heartbeat writes it again
            log.error("could not write this worker's file: %s", exc)

