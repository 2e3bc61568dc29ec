"""What users ask of queued jobs: cancel and retry. Every id is checked before anything changes.

Cancelling a running job only writes a request file; the worker that owns the job kills its process
tree. Processes talk through the queue directory, never by signalling each other's pids.
"""
from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence

from expq._fs import MODES
from expq.errors import InputError, NotFound
from expq.queue.attempts import read_attempts, reset_budget
from expq.queue.result import Result
from expq.queue.spec import JobSpec
from expq.queue.states import State
from expq.queue.store import JobQueue, read_spec

__all__ = ["cancel", "retry", "clear_cancel_request"]


def _specs_in(queue: JobQueue, job_ids: Sequence[int], allowed: set[State], verb: str) -> list[tuple[State, JobSpec]]:
    """Every job's state and spec, found with one listing for all ids; NotFound or InputError before
    any change."""
    located = queue.locate_many(job_ids)
    found = []
    for job_id in job_ids:
        if job_id not in located:
            raise NotFound("job", job_id)
        state, path = located[job_id]
        try:
            found.append((state, read_spec(path)))
        except (FileNotFoundError, InputError):  # moved meanwhile, or damaged: look at it alone
            found.append(queue.get(job_id))
        if found[-1][0] not in allowed:
            wanted = " or ".join(sorted(s.value for s in allowed))
            raise InputError(f"cannot {verb} job {job_id}: it is {found[-1][0].value} (only {wanted} jobs can be)")
    return found


def cancel(queue: JobQueue, job_ids: Sequence[int]) -> dict[int, str]:
    """Cancel pending jobs at once and ask the owners of running ones to kill them.

    Returns what happened to each id. Raises NotFound or InputError (a finished job) before changing anything.
    """
    outcome: dict[int, str] = {}
    for state, spec in _specs_in(queue, job_ids, {State.PENDING, State.RUNNING}, "cancel"):
        if state is State.PENDING and queue.move(spec, State.PENDING, State.CANCELLED):
            queue.write_outcome(spec, Result.without_run(spec.id, State.CANCELLED, "cancelled by user",
                                                         _attempts_so_far(queue, spec), time.time()))
            outcome[spec.id] = "cancelled"
        else:  # running, or it was claimed a moment ago: its worker acts on the request
            request = queue.paths.cancel_file(spec.id)
            try:
                os.close(os.open(request, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, MODES.file))
            except OSError as exc:  # e.g. a folder of that name, put there by hand
                raise InputError(f"cannot request the cancel of job {spec.id}: {request}: {exc.strerror}") from None
            outcome[spec.id] = "cancel requested"
    return outcome


def clear_cancel_request(queue: JobQueue, job_id: int) -> None:
    """Remove a job's cancel request, if there is one. Anything else of that name (a folder put there
    by hand, which never counted as a request) is left alone: it must not keep a job's end from being
    recorded."""
    with contextlib.suppress(OSError):
        os.unlink(queue.paths.cancel_file(job_id))


def _attempts_so_far(queue: JobQueue, spec: JobSpec) -> int:
    """A requeued job cancelled while pending keeps the count of its earlier attempts."""
    attempts = read_attempts(queue.paths.run(spec.run_dir))
    return attempts[-1].number if attempts else 0


def retry(queue: JobQueue, job_ids: Sequence[int]) -> list[int]:
    """Put failed or cancelled jobs back in the queue with a fresh retry budget; earlier logs stay.

    Raises NotFound or InputError (a job that is not failed or cancelled) before changing anything.
    """
    requeued = []
    for state, spec in _specs_in(queue, job_ids, {State.FAILED, State.CANCELLED}, "retry"):
        reset_budget(queue.paths.run(spec.run_dir))
        clear_cancel_request(queue, spec.id)
        if queue.move(spec, state, State.PENDING):
            requeued.append(spec.id)
    return requeued
