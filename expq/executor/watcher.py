"""One daemon thread per executor that resolves the futures of its unfinished jobs.

It polls each job's state file (a few stats, never a listing of ``pending/``) with backoff: every
``MIN_DELAY`` while states change, slowing to ``MAX_DELAY`` while nothing does, so waiting costs no
busy loop. Both delays grow with the number of jobs watched, so a 10,000-job map costs a bounded
number of stats per second (``_BUSY_RATE`` job polls while jobs change, ``_IDLE_RATE`` while not). The thread exits when no job is left to watch and starts again with the next one. Once
in a while a listing of ``pending/`` finds jobs that vanished (removed) so nobody waits on them forever.
"""
from __future__ import annotations

import concurrent.futures
import itertools
import logging
import os
import threading
from collections.abc import Collection, Iterable
from typing import TYPE_CHECKING

from expq.queue.paths import job_id_of
from expq.queue.states import State
from expq.queue.store import JobQueue

if TYPE_CHECKING:
    from expq.executor.job import Job

__all__ = ["Watcher", "running_ids", "MIN_DELAY", "MAX_DELAY"]

log = logging.getLogger(__name__)

MIN_DELAY = 0.02
MAX_DELAY = 1.0
_BACKOFF = 1.5
_BUSY_RATE = 20_000
_IDLE_RATE = 2_000
_SLOWEST = 5.0
_VANISHED_EVERY = 60  # polls between two looks for jobs that left the queue unfinished


class Watcher:
    """Resolves the futures of the jobs added to it as their jobs finish."""

    def __init__(self, queue: JobQueue) -> None:
        self.queue = queue
        self._jobs: dict[int, Job] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, jobs: Iterable[Job]) -> None:
        """Watch ``jobs`` until they finish (starting the thread if it is not running)."""
        with self._lock:
            self._jobs.update((job.id, job) for job in jobs)
            if self._jobs and self._thread is None:
                self._thread = threading.Thread(target=self._run, name="expq-job-watcher", daemon=True)
                self._thread.start()

    def wake(self) -> None:
        """Poll now rather than after the current delay (a job was just cancelled)."""
        self._wake.set()

    def _run(self) -> None:
        delay = MIN_DELAY
        seen: dict[int, bool] = {}
        for count in itertools.count():
            with self._lock:
                jobs = list(self._jobs.values())
                if not jobs:
                    self._thread = None
                    return
            changed = False
            running = self._running()
            for job in jobs:
                was_running = seen.get(job.id, False)
                if self._poll(job, running):
                    changed = True
                    seen.pop(job.id, None)
                    with self._lock:
                        self._jobs.pop(job.id, None)
                    continue
                now_running = job.running_seen()
                changed = changed or now_running != was_running
                seen[job.id] = now_running
            if count % _VANISHED_EVERY == _VANISHED_EVERY - 1:
                self._drop_vanished(jobs)
            shortest = max(MIN_DELAY, len(jobs) / _BUSY_RATE)
            longest = min(_SLOWEST, max(MAX_DELAY, len(jobs) / _IDLE_RATE))
            delay = shortest if changed else min(longest, max(shortest, delay * _BACKOFF))
            self._wake.wait(delay)
            self._wake.clear()

    def _running(self) -> Collection[int]:
        try:
            return running_ids(self.queue)
        except OSError as exc:  # the queue is unreadable for now: look again next round
            log.warning("cannot list running jobs in %s: %s", self.queue.root, exc)
            return ()

    def _poll(self, job: Job, running: Collection[int]) -> bool:
        try:
            return job.poll(running)
        except Exception as exc:  # noqa: BLE001 - this thread must not die: the job's waiters would hang forever
            log.exception("job %d: could not read its state", job.id)
            job.fail(f"its state could not be read: {type(exc).__name__}: {exc}")
            return True

    def _drop_vanished(self, jobs: list[Job]) -> None:
        """Resolve jobs that are in no state directory any more (``expq rm`` or a deleted queue)."""
        unresolved = [job for job in jobs if not concurrent.futures.Future.done(job)]  # the futures only
        try:
            located = self.queue.locate_many(job.id for job in unresolved)  # never a listing of pending/
        except OSError:
            return
        for job in unresolved:
            if job.id not in located:
                job.fail("it is no longer in the queue")
                with self._lock:
                    self._jobs.pop(job.id, None)


def running_ids(queue: JobQueue) -> set[int]:
    """The ids of the jobs in ``running/`` now (a small folder: at most the workers' slots)."""
    ids = set()
    for name in os.listdir(queue.paths.state_dir(State.RUNNING)):
        try:
            ids.add(job_id_of(name))
        except ValueError:  # a temp file or a stray name: not a job
            continue
    return ids
