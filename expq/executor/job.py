"""``expq.Job``: a queued job seen as a ``concurrent.futures.Future``.

The queue is the truth; the future follows it. A ``Watcher`` thread (see ``watcher``) resolves the
future once the job's state file reaches a finished state, so ``as_completed`` and ``wait`` work on
jobs as on any future, and ``done()``/``result()`` look at the queue once more before they answer.
Unlike a thread pool's future, ``cancel()`` also stops a running job: the worker kills its tree.
"""
from __future__ import annotations

import concurrent.futures
import os
import threading
from collections.abc import Collection
from pathlib import Path
from typing import Any

from expq._fs import read_json_object
from expq.contract import RESULT_JSON, STDERR_LOG, STDOUT_LOG
from expq.errors import InputError, InsecureQueue
from expq.executor.errors import JobError
from expq.executor.payload import read_outcome
from expq.executor.watcher import Watcher, running_ids
from expq.queue.spec import JobSpec
from expq.queue.states import FINISHED, State
from expq.queue.store import JobQueue

__all__ = ["Job"]

_EXECUTOR_MODULE = "expq.executor"
_FINISHED_ORDER = (State.DONE, State.FAILED, State.CANCELLED)


class Job(concurrent.futures.Future):
    """One queued job as a future. ``expq.Job(id, root=...)`` re-attaches to a job from any process.

    ``result()`` returns what the function returned, or raises ``JobError`` (it raised, was
    cancelled, timed out, was lost) or ``TimeoutError`` (not finished in ``timeout`` seconds; the
    job is left alone). A job that is not a Python function (``expq submit -- CMD``) returns None.

    Raises:
        NotFound: no job has this id in the root's queue.
    """

    id: int
    spec: JobSpec
    root: Path
    run_dir: Path

    def __init__(self, job_id: int, root: str | os.PathLike[str] | None = None) -> None:
        queue = JobQueue(root).require()
        _, spec = queue.get(int(job_id))
        self._setup(queue, spec, Watcher(queue))
        if not self.poll():
            self._watcher.add([self])

    @classmethod
    def queued(cls, queue: JobQueue, spec: JobSpec, watcher: Watcher) -> Job:
        """The future of a job an executor just queued; the executor hands it to its watcher."""
        job = cls.__new__(cls)
        job._setup(queue, spec, watcher)
        return job

    def _setup(self, queue: JobQueue, spec: JobSpec, watcher: Watcher) -> None:
        super().__init__()
        self.id = spec.id
        self.spec = spec
        self.root = queue.root
        self.run_dir = queue.root / spec.run_dir
        self._queue = queue
        self._watcher = watcher
        self._resolving = threading.Lock()
        self._final: State | None = None

    # -- the queue's view -------------------------------------------------------------------

    def state(self) -> State:
        """The job's state in the queue now (``pending``, ``running``, ``done``, ``failed``, ``cancelled``).

        Raises:
            NotFound: the job is no longer in the queue.
        """
        return self._queue.get(self.id)[0]

    def stdout(self) -> str:
        """What the job printed to stdout so far (every attempt), or ``""`` before it started."""
        return _read_text(self.run_dir / STDOUT_LOG)

    def stderr(self) -> str:
        """What the job wrote to stderr so far, with the worker's attempt headers."""
        return _read_text(self.run_dir / STDERR_LOG)

    # -- Future, kept in step with the queue ----------------------------------------------------

    def done(self) -> bool:
        self.poll()
        return super().done()

    def running(self) -> bool:
        self.poll()
        return super().running()

    def cancelled(self) -> bool:
        """True once the job ended cancelled (by ``cancel()``, ``expq cancel`` or a failed dependency)."""
        self.poll()
        return super().done() and self._final is State.CANCELLED

    def result(self, timeout: float | None = None) -> Any:
        self.poll()
        try:
            return super().result(timeout)
        except concurrent.futures.TimeoutError:  # the builtin TimeoutError from Python 3.11 on
            raise TimeoutError(f"job {self.id} did not finish within {timeout:g} s; it is left as it is") from None

    def exception(self, timeout: float | None = None) -> BaseException | None:
        self.poll()
        try:
            return super().exception(timeout)
        except concurrent.futures.TimeoutError:
            raise TimeoutError(f"job {self.id} did not finish within {timeout:g} s; it is left as it is") from None

    def cancel(self) -> bool:
        """Cancel the job, pending or running (its worker kills its whole process tree).

        Returns False when it had already finished. ``result()`` then raises ``JobError``.
        """
        from expq.queue.control import cancel

        if self.done():
            return False
        try:
            cancel(self._queue, [self.id])
        except InputError:  # it finished meanwhile
            return False
        self.poll()
        self._watcher.wake()
        return True

    def poll(self, running: Collection[int] | None = None) -> bool:
        """Look at the job's state once and resolve the future if it finished; True when it did.

        ``running``: the ids in ``running/``, listed by the caller before this call (a watcher lists
        once for all its jobs); None lists it here.
        """
        if super().done():
            return True
        state = self._peek(running_ids(self._queue) if running is None else running)
        if state is State.RUNNING:
            with self._resolving:
                if not super().done() and not super().running():
                    self.set_running_or_notify_cancel()
            return False
        if state not in FINISHED:
            return False
        value, error = self._outcome(state)
        self._resolve(state, value, error)
        return True

    def fail(self, reason: str) -> None:
        """Resolve with ``reason`` when the queue cannot say how the job ended (it was removed)."""
        self._resolve(State.FAILED, None, JobError(self.id, State.FAILED.value, reason))

    def running_seen(self) -> bool:
        """Whether the future is marked running, without looking at the queue again."""
        return super().running()

    # -- inside -------------------------------------------------------------------------------

    def _peek(self, running: Collection[int]) -> State:
        """Where the job is: three stats for the finished states, then the running listing.

        The listing was taken before the stats, so a job that finished in between is seen finished.
        A job in neither is taken to be pending: no listing of ``pending/``, which can be huge.
        """
        paths = self._queue.paths
        for state in _FINISHED_ORDER:
            if os.path.exists(paths.job_file(state, self.id)):
                return state
        return State.RUNNING if self.id in running else State.PENDING

    def _resolve(self, state: State, value: Any, error: JobError | None) -> None:
        with self._resolving:
            if super().done():
                return
            self._final = state
            if error is None:
                self.set_result(value)
            else:
                self.set_exception(error)

    def _outcome(self, state: State) -> tuple[Any, JobError | None]:
        """The return value, or the error ``result()`` raises, of a job that ended in ``state``."""
        record = read_json_object(self.run_dir / RESULT_JSON) or {}
        reason = str(record.get("reason") or "")
        if state is State.CANCELLED:
            return None, JobError(self.id, state.value, reason or "cancelled")
        if list(self.spec.command[1:3]) != ["-m", _EXECUTOR_MODULE]:  # a shell command: no value
            return None, None if state is State.DONE else JobError(self.id, state.value, reason or "failed")
        try:
            outcome = read_outcome(self.run_dir)
        except InsecureQueue as exc:
            return None, JobError(self.id, state.value, f"its outcome file is not loaded: {exc}")
        except Exception as exc:  # noqa: BLE001 - unpickling runs the value's own code; its error is the job's
            return None, JobError(self.id, state.value,
                                  f"its return value cannot be loaded here: {type(exc).__name__}: {exc}")
        attempts = record.get("attempts")
        if outcome is not None and None not in (outcome.attempt, attempts) and outcome.attempt != attempts:
            outcome = None  # an earlier attempt's, not the last one's
        if state is State.DONE:
            if outcome is not None and outcome.ok:
                return outcome.value, None
            return None, JobError(self.id, state.value, "it exited without recording a return value")
        if outcome is not None and not outcome.ok and record.get("outcome", "failed") == "failed":
            error = JobError(self.id, state.value, outcome.reason, outcome.exc_type, outcome.message,
                             outcome.traceback)
            error.__cause__ = outcome.exception
            return None, error
        return None, JobError(self.id, state.value, reason or "failed")

    def __repr__(self) -> str:
        shown = self._final.value if self._final is not None else ("running" if super().running() else "pending")
        return f"<expq.Job {self.id} {self.spec.name} {shown}>"


def _read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
