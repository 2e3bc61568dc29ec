"""Ending what is left of a lost attempt (its worker died or froze) before its job can run again.

The attempt's processes are found by its cgroup (named by the dead worker and the attempt) and by the
job's ``EXPQ_RUN_DIR`` and ``EXPQ_ATTEMPT`` in their environment, never by a pid read from the
lease (it may have been recycled). A SIGKILL is only a request: the job is given back to the queue
once every process found is really gone, so no new attempt ever overlaps a dying one.
"""
from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path

from expq.worker.cgroup import cgroup2_root
from expq.worker.child import JobTree

__all__ = ["RESCANS", "DEATH_WAIT", "lost_attempt_cgroup", "end_lost_attempt"]

RESCANS = (0.0, 0.05, 0.25)  # seconds before each search: a child caught between spawn and exec shows up later
DEATH_WAIT = 5.0  # seconds to wait for killed processes to die before trying again at a later heartbeat
_POLL = 0.01


def lost_attempt_cgroup(worker_id: str, job_id: int, attempt: int) -> Path | None:
    """The cgroup the dead worker made for the attempt, if it got that far."""
    root = cgroup2_root()
    group = root / f"expq-{worker_id}" / f"job-{job_id}-{attempt}" if root else None
    return group if group is not None and group.is_dir() else None


def end_lost_attempt(tree: JobTree, keep_alive: Callable[[], None], wait: float = DEATH_WAIT) -> bool:
    """SIGKILL every process of the attempt, searching again after each pause of ``RESCANS`` (a
    child caught between its worker's spawn and its exec still shows the worker's environment), then
    wait until they are gone. ``keep_alive`` runs between steps: the caller's heartbeat, so a worker
    busy here is not judged frozen. False when something still lives after ``wait`` seconds."""
    for pause in RESCANS:
        time.sleep(pause)
        keep_alive()
        tree.signal(signal.SIGKILL)
    deadline = time.monotonic() + wait
    while tree.alive():
        if time.monotonic() >= deadline:
            return False
        keep_alive()
        time.sleep(_POLL)
    return True
