"""One cgroup (v2) per job where this machine lets the worker make them: the kernel then knows every
process of the job, including a daemon that cleared its environment and started its own session
(``env -i setsid ...``), which the other ways of finding a job's processes miss. ``cgroup.kill``
ends them all at once.

Where cgroup v2 is not mounted or not writable (most unprivileged accounts without systemd
delegation), ``JobCgroups.open`` returns None and the worker falls back on process groups,
descendants and the job's environment (see ``JobTree``).

The move is queued right after ``posix_spawn`` returns and runs on a thread of its own (it costs the
kernel an RCU grace period, about 2 ms here), within a few milliseconds of the exec; a fork the child
makes while the move is in progress waits for it and lands inside. A process forked before that
moment, by a job that starts a daemon at once, would stay outside, which docs/worker.md says.
Removals, which may have to wait for the last processes to die, run on the same thread, in order.
"""
from __future__ import annotations

import contextlib
import errno
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from queue import SimpleQueue

__all__ = ["JobCgroups", "cgroup2_root", "pids", "kill", "remove"]

_MOUNTS = "/proc/self/mounts"


def cgroup2_root() -> Path | None:
    """This process's own cgroup v2 folder, or None when there is none to use."""
    try:
        with open(_MOUNTS) as mounts:
            mount = next((line.split()[1] for line in mounts if line.split()[2:3] == ["cgroup2"]), None)
        with open("/proc/self/cgroup") as own:
            path = next((line.strip()[3:] for line in own if line.startswith("0::")), None)
    except OSError:
        return None
    if mount is None or path is None:
        return None
    return Path(mount) / path.lstrip("/")


class JobCgroups:
    """The cgroups of one worker's jobs, in a folder of its own under the worker's cgroup."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self._ops: SimpleQueue[Callable[[], None] | None] = SimpleQueue()
        self._thread = threading.Thread(target=self._serve, name="expq-cgroups", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        """Run the queued cgroup operations in order (a move before the removal of the same cgroup)."""
        while (op := self._ops.get()) is not None:
            with contextlib.suppress(OSError):
                op()

    @classmethod
    def open(cls, worker_id: str) -> JobCgroups | None:
        """A writable cgroup folder for this worker's jobs, or None (then the fallback is used)."""
        root = cgroup2_root()
        if root is None:
            return None
        _sweep_dead(root, worker_id.rsplit("-", 2)[0])
        base = root / f"expq-{worker_id}"
        try:
            os.mkdir(base, 0o700)
            if not (base / "cgroup.kill").exists():  # kernels before 5.14: no one-call kill
                os.rmdir(base)
                return None
        except OSError:
            return None
        return cls(base)

    def path(self, job_id: int, attempt: int) -> Path:
        return self.base / f"job-{job_id}-{attempt}"

    def add(self, job_id: int, attempt: int, pid: int) -> Path:
        """Queue the creation of the job's cgroup and the move of its child into it; returns its path.

        The move costs the kernel an RCU grace period (about 2 ms here), so it runs on the thread and
        the worker starts the next job meanwhile. A kill before the move is done reaches the child by
        its process group and environment, as without cgroups; so does the recovery of a worker killed
        in between (see ``lost``)."""
        path = self.path(job_id, attempt)
        self._ops.put(lambda: _enter(path, pid))
        return path

    def discard(self, path: Path) -> None:
        """Queue the end of an ended job's cgroup: its removal, which succeeds at once when the child
        left nothing behind; else SIGKILL what is left (a write that costs about 0.3 ms, so not on the
        worker's path to its next job) and remove it once the last processes are gone."""
        def end() -> None:
            if not remove(path):
                kill(path)
                _remove_when_empty(path)

        self._ops.put(end)

    def close(self) -> None:
        """Finish the queued operations, then remove the worker's folder once its jobs' cgroups are gone."""
        self._ops.put(None)
        self._thread.join(timeout=10)
        with contextlib.suppress(OSError):
            for child in self.base.iterdir():
                if child.is_dir():
                    remove(child)
            os.rmdir(self.base)


def _sweep_dead(root: Path, host: str) -> None:
    """Remove the empty cgroup folders of this host's dead workers (a worker killed outright leaves its
    folder behind; its jobs' processes were killed by whoever recovered them)."""
    from expq._fs import pid_exists

    for folder in root.glob(f"expq-{host}-*"):
        pid = folder.name.rsplit("-", 2)[-2]
        if not pid.isdigit() or pid_exists(int(pid)):
            continue
        with contextlib.suppress(OSError):
            for child in folder.iterdir():
                if child.is_dir():
                    remove(child)
            os.rmdir(folder)


def _enter(path: Path, pid: int) -> None:
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o700)
    fd = os.open(f"{path}/cgroup.procs", os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, str(pid).encode())
    finally:
        os.close(fd)


def _remove_when_empty(path: Path, tries: int = 50) -> None:
    for _ in range(tries):
        if remove(path):
            return
        time.sleep(0.01)


def pids(path: Path) -> list[int]:
    """The processes in a job's cgroup now (empty when it is gone)."""
    try:
        return [int(line) for line in (path / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def kill(path: Path) -> None:
    """SIGKILL every process of the cgroup, descendants included, in one write (three syscalls: this
    runs at the end of every job)."""
    with contextlib.suppress(OSError):
        fd = os.open(f"{path}/cgroup.kill", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, b"1")
        finally:
            os.close(fd)


def remove(path: Path) -> bool:
    """Remove an empty job cgroup; False while processes are still dying in it."""
    try:
        os.rmdir(path)
    except FileNotFoundError:
        return True
    except OSError as exc:
        if exc.errno in (errno.EBUSY, errno.ENOTEMPTY):
            return False
        raise
    return True
