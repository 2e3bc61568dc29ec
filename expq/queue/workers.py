"""The workers registered in a queue (``queue/workers/<id>.json``, touched on every heartbeat),
which of them look alive, for listings (status reasons, ``expq workers``, ``expq slurm list``), and
stop requests (``queue/stop/<id>``, written by ``expq workers stop``, acted on by that worker at its
next heartbeat: processes talk through the queue directory, so this works across hosts).

The reaper does not use this: it judges another host's worker by watching its heartbeat *move*
(``lease.HeartbeatWatch``). A listing has no history, so it compares the heartbeat's age with
``SILENCE`` instead, which clock skew can blur; that only changes what a listing shows.
"""
from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from expq._fs import MODES, ensure_dir, read_json_object
from expq.queue.paths import QueuePaths

__all__ = ["this_host", "live_workers", "SILENCE", "stop_file", "request_stop", "stop_requested", "clear_stop",
           "jobs_by_worker"]

SILENCE = 60.0


def this_host() -> str:
    """The host name recorded in leases and attempts (``EXPQ_HOST`` overrides it, for tests)."""
    return os.environ.get("EXPQ_HOST") or os.uname().nodename


def live_workers(paths: QueuePaths, now: float) -> list[dict[str, Any]]:
    """The records of the workers that look alive, sorted by worker id."""
    host = this_host()
    try:
        entries = sorted(e.path for e in os.scandir(paths.workers) if e.name.endswith(".json"))
    except FileNotFoundError:
        return []
    alive = []
    for path in entries:
        info = read_json_object(path)
        if info is not None and _looks_alive(info, path, host, now):
            alive.append(info)
    return alive


def _looks_alive(info: dict[str, Any], path: str, host: str, now: float) -> bool:
    pid = info.get("pid")
    if info.get("host") == host and isinstance(pid, int) and pid > 0:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:  # alive, owned by someone else
            return True
        return True
    try:
        return now - os.stat(path).st_mtime < SILENCE
    except FileNotFoundError:
        return False


def stop_file(paths: QueuePaths, worker_id: str) -> Path:
    return paths.stop_requests / worker_id


def request_stop(paths: QueuePaths, worker_ids: Iterable[str]) -> None:
    """Ask these workers to stop gracefully (as on SIGTERM) at their next heartbeat."""
    for worker_id in worker_ids:
        ensure_dir(stop_file(paths, worker_id).parent)
        fd = os.open(stop_file(paths, worker_id), os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, MODES.file)
        os.close(fd)


def stop_requested(paths: QueuePaths, worker_id: str) -> bool:
    """Whether a stop request for this worker exists, written by this user (the belt to the private folder)."""
    from expq.queue.security import owned_by_me

    try:
        return owned_by_me(os.lstat(stop_file(paths, worker_id)))
    except (FileNotFoundError, NotADirectoryError):
        return False


def clear_stop(paths: QueuePaths, worker_id: str) -> None:
    try:
        os.unlink(stop_file(paths, worker_id))
    except (FileNotFoundError, NotADirectoryError):
        return


def jobs_by_worker(paths: QueuePaths) -> dict[str, list[int]]:
    """The running jobs of each worker, from the leases (one small read per running job)."""
    from expq.queue.lease import read_lease
    from expq.queue.paths import claim_of, job_id_of

    found: dict[str, list[int]] = {}
    try:
        names = sorted(n for n in os.listdir(paths.leases) if n.endswith(".json"))
    except (FileNotFoundError, NotADirectoryError):
        return found
    for name in names:
        try:
            job = job_id_of(name)
        except ValueError:
            continue
        lease = read_lease(paths, job, claim_of(name))
        if lease is not None:
            found.setdefault(lease.worker_id, []).append(job)
    return found
