"""One cgroup (v2) per job where this machine lets the worker make them: the kernel then knows every
process of the job, including a daemon that cleared its environment and started its own session
(``env -i setsid ...``), which the other ways of finding a job's processes miss. ``cgroup.kill``
ends them all at once.

Where cgroup v2 is not mounted or not writable (most unprivileged accounts without systemd
delegation), ``JobCgroups.open`` returns None and the worker falls back on process groups,
descendants and the job's environment (see ``JobTree``).

A child is moved into its cgroup right after ``posix_spawn`` returns, before it has run more than
its first instructions; a process it forks before that moment (within microseconds of exec) would
stay outside, which is said in docs/worker.md.
"""
from __future__ import annotations

import contextlib
import errno
import os
from pathlib import Path

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

    @classmethod
    def open(cls, worker_id: str) -> JobCgroups | None:
        """A writable cgroup folder for this worker's jobs, or None (then the fallback is used)."""
        root = cgroup2_root()
        if root is None:
            return None
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

    def add(self, job_id: int, attempt: int, pid: int) -> Path | None:
        """Create the job's cgroup and move its child into it; None when that fails (fallback)."""
        path = self.path(job_id, attempt)
        try:
            with contextlib.suppress(FileExistsError):
                os.mkdir(path, 0o700)
            with open(path / "cgroup.procs", "w") as procs:
                procs.write(str(pid))
        except OSError:
            return None
        return path

    def close(self) -> None:
        """Remove the worker's folder once its jobs' cgroups are gone."""
        with contextlib.suppress(OSError):
            for child in self.base.iterdir():
                if child.is_dir():
                    remove(child)
            os.rmdir(self.base)


def pids(path: Path) -> list[int]:
    """The processes in a job's cgroup now (empty when it is gone)."""
    try:
        return [int(line) for line in (path / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def kill(path: Path) -> None:
    """SIGKILL every process of the cgroup, descendants included, in one write."""
    with contextlib.suppress(OSError):
        (path / "cgroup.kill").write_text("1")


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
