"""The workers registered in a queue (``queue/workers/<id>.json``, touched on every heartbeat) and
which of them look alive, for listings: status reasons and ``expq slurm list``.

The reaper does not use this: it judges another host's worker by watching its heartbeat *move*
(``lease.HeartbeatWatch``). A listing has no history, so it compares the heartbeat's age with
``SILENCE`` instead, which clock skew can blur; that only changes what a listing shows.
"""
from __future__ import annotations

import os
import socket
from typing import Any

from expq._fs import read_json_object
from expq.queue.paths import QueuePaths

__all__ = ["this_host", "live_workers", "SILENCE"]

SILENCE = 60.0


def this_host() -> str:
    """The host name recorded in leases and attempts (``EXPQ_HOST`` overrides it, for tests)."""
    return os.environ.get("EXPQ_HOST") or socket.gethostname()


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
