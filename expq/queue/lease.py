"""Who runs a job: a lease per running job, and a heartbeat file per worker.

A lease is the running attempt's record plus what liveness checks need: the worker's pid with its
start time (so a recycled pid is not taken for a live worker) and the child's pid (pid only: reading
a child's start time while it execs costs most of a millisecond; an orphan is recognised by its
environment instead). The worker keeps its own heartbeat fresh by touching its worker file; readers on
other hosts judge liveness by whether that mtime still moves (``HeartbeatWatch``), which needs no
agreement between the hosts' clocks.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from expq._fs import write_file
from expq.queue.attempts import Attempt
from expq.queue.paths import QueuePaths

__all__ = ["Lease", "write_lease", "lease_is_mine", "read_lease", "HeartbeatWatch"]


@dataclass(frozen=True)
class Lease:
    job_id: int
    attempt: Attempt
    pid: int
    pid_started: float
    child_pid: int

    @property
    def worker_id(self) -> str:
        return self.attempt.worker_id

    @property
    def host(self) -> str:
        return self.attempt.host

    def to_dict(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "pid": self.pid, "pid_started": self.pid_started,
                "child_pid": self.child_pid, "attempt": self.attempt.to_dict()}


def write_lease(paths: QueuePaths, lease: Lease) -> tuple[int, int]:
    """Write the lease and return its stamp (inode, mtime), by which its owner later checks in one
    ``stat`` that nobody took the job over (a reaper removes the lease; a new owner writes another).

    Written once, in place: a reader that catches it half-written sees no lease, which it already
    handles (the claim grace period); no fsync, since after a power loss the job runs again anyway.
    """
    info = write_file(paths.lease_file(lease.job_id), json.dumps(lease.to_dict(), separators=(",", ":")).encode())
    return info.st_ino, info.st_mtime_ns


def lease_is_mine(paths: QueuePaths, job_id: int, stamp: tuple[int, int]) -> bool:
    """Whether the lease is still the one its owner wrote (see ``write_lease``)."""
    try:
        info = os.stat(paths.lease_file(job_id))
    except FileNotFoundError:
        return False
    return (info.st_ino, info.st_mtime_ns) == stamp


def read_lease(paths: QueuePaths, job_id: int) -> Lease | None:
    """The lease of a running job, or None when absent or unreadable (treated as no owner)."""
    try:
        data = json.loads(paths.lease_file(job_id).read_bytes())
        return Lease(data["job_id"], Attempt.from_dict(data["attempt"]), data["pid"], data["pid_started"],
                     data["child_pid"])
    except (FileNotFoundError, ValueError, TypeError, KeyError):
        return None


class HeartbeatWatch:
    """Decides that a worker on another host is gone when its heartbeat mtime stops moving.

    Only this process's own clock measures how long the mtime has stood still, so clock skew between
    hosts (or a server stamping mtimes) cannot make a live worker look dead.
    """

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._seen: dict[str, tuple[float | None, float]] = {}

    def is_stale(self, paths: QueuePaths, worker_id: str, now: float) -> bool:
        """True once ``worker_id``'s heartbeat has not changed for ``timeout`` seconds of ``now``."""
        try:
            mtime: float | None = os.stat(paths.worker_file(worker_id)).st_mtime
        except FileNotFoundError:
            mtime = None
        previous = self._seen.get(worker_id)
        if previous is None or previous[0] != mtime:
            self._seen[worker_id] = (mtime, now)
            return False
        return now - previous[1] >= self.timeout
