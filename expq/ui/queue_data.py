"""What the queue view shows and the two actions it offers, through the library the CLI uses.

Counts, the running jobs, the pending ones in the order they will run (with why they wait) and
the recently finished ones come from ``expq.launcher.report.collect``, which reads only the jobs
it shows, so the view stays cheap on a queue of 100,000 jobs. Cancel and retry are
``expq.queue.control``'s: a running job is cancelled by the worker that owns it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from expq.launcher import report
from expq.queue.control import cancel, retry
from expq.queue.spec import MAX_PRIORITY
from expq.queue.states import State
from expq.queue.store import JobQueue
from expq.ui.paths import read_text_from
from expq.ui.runs_data import clean

__all__ = ["queue_view", "job_log", "job_record", "cancel_job", "retry_job"]



def _queue(root: Path) -> JobQueue:
    return JobQueue(root)


def queue_view(root: Path) -> dict[str, Any]:
    """Counts per state; running, pending (schedule order) and recently finished jobs."""
    queue = _queue(root)
    if not queue.exists():
        return {"counts": {s.value: 0 for s in State}, "running": [], "pending": [], "finished": [],
                "hidden": 0, "workers": 0, "exists": False}
    snapshot = report.collect(queue, report.Query())
    by_state: dict[str, list[dict[str, Any]]] = {"running": [], "pending": [], "finished": []}
    for job in snapshot.jobs:
        if job["state"] in (State.RUNNING.value, State.PENDING.value):
            by_state[job["state"]].append(job)
        else:
            by_state["finished"].append(job)
    # the claim order: higher priority first, then lower id (the sorted pending file names)
    by_state["pending"].sort(key=lambda j: (MAX_PRIORITY - j["priority"], j["id"]))
    by_state["running"].sort(key=lambda j: j["id"])
    by_state["finished"].sort(key=lambda j: (j["finished_at"] or 0, j["id"]), reverse=True)
    return clean({"counts": snapshot.counts, **by_state, "hidden": snapshot.hidden,
                  "workers": snapshot.workers, "exists": True})


def job_record(root: Path, job_id: int) -> dict[str, Any]:
    """The ``expq show`` record of one job.

    Raises:
        NotFound: no such job (or no queue).
    """
    return clean(report.show(_queue(root).require(), job_id))


def job_log(root: Path, job_id: int, stream: str, offset: int | None) -> dict[str, Any]:
    """A job's stdout or stderr from ``offset`` (see ``read_text_from``).

    Raises:
        NotFound: no such job.
    """
    queue = _queue(root).require()
    _, spec = queue.get(job_id)
    run = queue.paths.run(spec.run_dir)
    return read_text_from(run.stdout if stream == "stdout" else run.stderr, offset)


def cancel_job(root: Path, job_id: int) -> str:
    """Cancel a pending job, or ask the worker of a running one to kill its process tree.

    Raises:
        NotFound, InputError: no such job, or it has finished.
    """
    return cancel(_queue(root).require(), [job_id])[job_id]


def retry_job(root: Path, job_id: int) -> str:
    """Put a failed or cancelled job back in the queue.

    Raises:
        NotFound, InputError: no such job, or it is not failed or cancelled.
    """
    requeued = retry(_queue(root).require(), [job_id])
    return "requeued" if requeued else "not requeued (it moved meanwhile)"
