"""Which worker of a host recovers the queue's orphans: the holder of a host-wide ``flock``.

Recovering a lost attempt means searching the host for its processes, killing them and waiting for
them to die; done by every worker at once, a storm of worker deaths would have each new worker spend
its first second on the same searches. The kernel frees the lock when its holder dies, so the next
worker to look takes over with no liveness judgement; the holder's id is written in the lock file,
so the others can still step in when it is frozen (its heartbeat stopped moving). Without a usable
lock folder every worker recovers: duplicated work, never a wrong result (a recovery is committed by
one ``unlink`` and kills only its own attempt).
"""
from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Callable
from pathlib import Path

from expq.errors import InsecureQueue
from expq.worker.lock_dir import check_lock_dir

__all__ = ["HostReaper"]

log = logging.getLogger(__name__)


class HostReaper:
    """This worker's claim to the host's orphan recovery for one queue."""

    def __init__(self, lock_dir: Path, host: str, root: Path, worker_id: str) -> None:
        self.lock_dir = lock_dir
        self.host = host.replace("/", "_")
        self.root = root
        self.worker_id = worker_id
        self.path: Path | None = None  # known once the root exists (the worker creates it first)
        self._fd: int | None = None

    def is_mine(self, holder_is_stale: Callable[[str], bool]) -> bool:
        """True when this worker holds the lock (taking it if free), or the holder looks frozen."""
        if self._fd is not None:
            return True
        try:
            check_lock_dir(self.lock_dir)
            # Named by the root's identity on this host (device and inode), whatever path names it.
            info = os.stat(self.root)
            self.path = self.lock_dir / f"reaper-{self.host}-{info.st_dev:x}-{info.st_ino:x}.lock"
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        except (OSError, InsecureQueue) as exc:
            log.debug("no host-wide reaper lock (%s): this worker recovers orphans too", exc)
            return True
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 256).decode(errors="replace").strip()
            os.close(fd)
            return bool(holder) and holder_is_stale(holder)
        os.ftruncate(fd, 0)
        os.pwrite(fd, self.worker_id.encode(), 0)
        self._fd = fd
        return True

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
