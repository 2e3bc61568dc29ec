"""``expq worker --detach``: start a worker in the background and print its id.

The worker runs the same command line without ``--detach``, in a session of its own (no controlling
terminal, so closing the terminal or the ssh connection sends it nothing), stdin from /dev/null, and
stdout and stderr appended to ``queue/workers/<worker id>.log``. This command returns once the worker
has registered (its worker file names its pid), so a worker that refuses to start (an unsafe queue,
bad ``--gpus``) is reported here with its own error line and exit code, not silently lost.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Sequence
from pathlib import Path

from expq._fs import write_file
from expq.errors import ExpqError

__all__ = ["detach", "START_TIMEOUT"]

START_TIMEOUT = 60.0  # seconds a detached worker may take to register (a slow GPU probe, a slow shared disk)


class DetachFailed(ExpqError):
    """The background worker exited before it registered; its exit code is this command's."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def detach(root: Path, argv: Sequence[str], timeout: float = START_TIMEOUT) -> str:
    """Start ``expq <argv>`` (a worker command line without ``--detach``) in the background; returns
    its worker id once it registered.

    Raises:
        NotFound, InsecureQueue: no queue, or one that is unsafe to serve (checked here first).
        DetachFailed: the worker exited before registering (its last log line is the message).
    """
    from expq.queue.store import JobQueue
    from expq.queue.workers import live_workers

    queue = JobQueue(root).require()
    queue.check_secure()
    log_path = queue.paths.workers / f"detached-{uuid.uuid4().hex[:12]}.log"
    write_file(log_path, b"", exclusive=True)  # with the modes of the root's other files
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        proc = subprocess.Popen([sys.executable, "-m", "expq", *argv], stdin=subprocess.DEVNULL, stdout=fd,
                                stderr=fd, start_new_session=True)
    finally:
        os.close(fd)
    deadline = time.monotonic() + timeout
    while True:
        mine = [w for w in live_workers(queue.paths, time.time()) if w.get("pid") == proc.pid]
        if mine:
            worker_id = str(mine[0]["worker_id"])
            final = queue.paths.workers / f"{worker_id}.log"
            os.rename(log_path, final)  # the worker keeps writing through its open descriptor
            return worker_id
        code = proc.poll()
        if code is not None:
            raise DetachFailed(f"the worker exited with code {code} before it started: {_last_line(log_path)} "
                               f"(log: {log_path})", 2 if code == 2 else 1)
        if time.monotonic() > deadline:
            raise DetachFailed(f"the worker (pid {proc.pid}) has not registered after {timeout:g} s; "
                               f"see {log_path}", 1)
        time.sleep(0.05)


def _last_line(path: Path) -> str:
    try:
        lines = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "(no log)"
    return lines[-1].removeprefix("expq: error: ") if lines else "(no output)"
