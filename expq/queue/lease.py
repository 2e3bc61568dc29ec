"""Who runs a job: a lease per claim, and a heartbeat file per worker.

A lease is the running attempt's record plus what liveness checks need: the worker's pid with its
start time (so a recycled pid is not taken for a live worker). It is created exclusively after the
claim and before the job's child starts, so every child that can exist has a lease naming its
attempt; removing it is how its attempt is taken away (one ``unlink``, which exactly one remover
wins). The worker keeps its own heartbeat fresh by touching its worker file; readers judge liveness
by whether that mtime still moves (``HeartbeatWatch``), which needs no agreement between clocks.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from expq._fs import write_file
from expq.errors import InputError
from expq.queue.attempts import Attempt
from expq.queue.paths import QueuePaths

__all__ = ["Lease", "write_lease", "lease_is_mine", "read_lease", "HeartbeatWatch"]


@dataclass(frozen=True)
class Lease:
    job_id: int
    attempt: Attempt
    pid: int
    pid_started: float
    claim: str = ""

    @property
    def worker_id(self) -> str:
        return self.attempt.worker_id

    @property
    def host(self) -> str:
        return self.attempt.host

    def to_dict(self) -> dict[str, Any]:
        return {"job_id": self.job_id, "pid": self.pid, "pid_started": self.pid_started, "claim": self.claim,
                "attempt": self.attempt.to_dict()}


def write_lease(paths: QueuePaths, lease: Lease) -> tuple[int, int]:
    """Create the lease (never replacing one) and return its stamp (inode, mtime), by which its owner
    later checks in one ``stat`` that nobody took the attempt away.

    No fsync: after a power loss the job runs again anyway.

    Raises:
        FileExistsError: this claim has a lease already (a stalled claimer's twin); OSError: disk full.
    """
    data = json.dumps(lease.to_dict(), separators=(",", ":")).encode()
    info = write_file(paths.lease_file(lease.job_id, lease.claim), data, exclusive=True)
    return info.st_ino, info.st_mtime_ns


def lease_is_mine(paths: QueuePaths, job_id: int, stamp: tuple[int, int], claim: str = "") -> bool:
    """Whether the lease is still the one its owner wrote (see ``write_lease``)."""
    try:
        info = os.stat(paths.lease_file(job_id, claim))
    except FileNotFoundError:
        return False
    return (info.st_ino, info.st_mtime_ns) == stamp


def read_lease(paths: QueuePaths, job_id: int, claim: str | None = None) -> Lease | None:
    """The lease of a running job's claim (``None``: whichever claim holds one), or None when absent
    or unreadable (treated as no owner)."""
    if claim is None:
        prefix = f"{job_id:08d}"
        try:
            names = sorted(n for n in os.listdir(paths.leases) if n.startswith(prefix) and n.endswith(".json"))
        except (FileNotFoundError, NotADirectoryError):
            return None
        claim = names[-1][len(prefix) + 1:-5] if names else ""
    from expq.queue.store import read_queue_file

    try:
        raw, info = read_queue_file(paths.lease_file(job_id, claim), limit=1 << 20)
        if info.st_uid != os.geteuid():  # only this user's workers write leases; never act on a forged one
            return None
        data = json.loads(raw)
        return Lease(data["job_id"], Attempt.from_dict(data["attempt"]), data["pid"], data["pid_started"],
                     data.get("claim", ""))
    except (OSError, InputError, ValueError, TypeError, KeyError, RecursionError):
        return None


class HeartbeatWatch:
    """Decides that a worker is gone when its heartbeat mtime stops moving: on another host, or on
    this one when its pid lives on but it is frozen (SIGSTOP, a swap storm).

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
