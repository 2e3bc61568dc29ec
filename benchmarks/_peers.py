"""The peers: installing them, and driving task-spooler, nq, GNU parallel and the Python floor the
same way expq is driven (pre-queued, then drained; or submitted one client call at a time)."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks._common import Config, run_cmd

__all__ = ["ensure", "have", "Tsp", "Nq", "parallel_run", "floor_seconds", "Blocker"]

PACKAGES = {"tsp": "task-spooler", "nq": "nq", "parallel": "parallel", "hyperfine": "hyperfine"}


def have(tool: str) -> bool:
    return shutil.which(tool) is not None


def ensure(cfg: Config, install: bool = True) -> None:
    """Install the missing Debian peers with apt-get (``apt-get update`` only if the install fails);
    without root or apt, or with installs disabled, the missing ones are skipped with a note."""
    missing = [tool for tool in PACKAGES if not have(tool)]
    if not missing:
        return
    names = ", ".join(missing)
    if not install:
        cfg.notes.append(f"not installed, skipped: {names} (installs disabled)")
        return
    if os.geteuid() != 0 or not have("apt-get"):
        cfg.notes.append(f"not installed, skipped: {names} (needs root and apt-get: "
                         f"apt-get install -y {' '.join(PACKAGES[t] for t in missing)})")
        return
    packages = [PACKAGES[t] for t in missing]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}

    def apt_get(*args: str) -> int:
        return subprocess.run(["apt-get", *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              env=env).returncode

    if apt_get("install", "-y", *packages) != 0:
        apt_get("update")
        apt_get("install", "-y", *packages)
    still = [t for t in missing if not have(t)]
    if still:
        cfg.notes.append(f"apt-get could not install {', '.join(still)}: skipped")


class Blocker:
    """A first job that holds a slot until released, so the jobs behind it are queued, not run."""

    def __init__(self, directory: Path) -> None:
        self.fifo = directory / "release.fifo"
        os.mkfifo(self.fifo)

    @property
    def command(self) -> list[str]:
        return ["sh", "-c", f"read x < '{self.fifo}'"]

    def release(self) -> None:
        fd = os.open(self.fifo, os.O_WRONLY)  # waits for the blocker to open its end, if it has not yet
        try:
            os.write(fd, b"go\n")
        finally:
            os.close(fd)

    def release_quietly(self) -> None:
        """Release the blocker if it still waits (after a server was killed under it); never blocks."""
        try:
            fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError:  # ENXIO: nobody is reading, so nobody is left waiting
            return
        try:
            os.write(fd, b"go\n")
        finally:
            os.close(fd)


class Tsp:
    """A private task-spooler server (own socket, output files in ``directory``), killed on ``close``."""

    def __init__(self, cfg: Config, directory: Path) -> None:
        self.cfg = cfg
        self.directory = directory
        # A socket path must fit in 108 bytes, so the socket lives in a short directory of its own;
        # the jobs' output files go to ``directory`` (TMPDIR), on the disk being measured.
        self.socket_dir = tempfile.mkdtemp(prefix="expq-tsp-")
        self.env = cfg.env(TS_SOCKET=os.path.join(self.socket_dir, "socket"), TMPDIR=str(directory))
        self.last_id = -1

    def call(self, *args: str) -> str:
        return run_cmd(["tsp", *args], self.cfg, env=self.env, stdout=subprocess.PIPE).stdout.decode()

    def add(self, command: Sequence[str]) -> int:
        """One client call that queues ``command``; returns the job id."""
        self.last_id = int(self.call(*command).strip())
        return self.last_id

    def set_slots(self, slots: int) -> None:
        self.call("-S", str(slots))

    def wait_all(self) -> None:
        """Wait for the last job, then for any job still queued or running (with 2 slots the last job
        may end before the one before it)."""
        subprocess.run(["tsp", "-w", str(self.last_id)], env=self.env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        while True:
            busy = [line.split()[0] for line in self.call("-l").splitlines()[1:]
                    if len(line.split()) > 1 and line.split()[1] in ("running", "queued", "allocating")]
            if not busy:
                return
            subprocess.run(["tsp", "-w", busy[-1]], env=self.env, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)

    def finished(self) -> int:
        return sum(1 for line in self.call("-l").splitlines()[1:] if " finished " in line)

    def close(self) -> None:
        subprocess.run(["tsp", "-K"], env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        shutil.rmtree(self.socket_dir, ignore_errors=True)


class Nq:
    """nq with its own queue directory: every ``add`` starts a process that waits for the jobs
    before it (nq has one implicit slot)."""

    def __init__(self, cfg: Config, directory: Path) -> None:
        self.cfg = cfg
        self.env = cfg.env(NQDIR=str(directory / "nq"))

    def add(self, command: Sequence[str]) -> None:
        run_cmd(["nq", *command], self.cfg, env=self.env)

    def wait_all(self) -> None:
        run_cmd(["nq", "-w"], self.cfg, env=self.env)


def parallel_run(cfg: Config, jobs: int, count: int) -> float:
    """Seconds GNU parallel takes to run ``true`` ``count`` times with ``jobs`` at once."""
    argv = ["parallel", "--will-cite", "-j", str(jobs), "true", ":::", *map(str, range(count))]
    start = time.perf_counter()
    run_cmd(argv, cfg)
    return time.perf_counter() - start


# The floor: a bare Python loop starting each job with Popen into a fresh directory with two log
# files, ``slots`` children at a time, timed inside the process (no interpreter start).
FLOOR_SCRIPT = r"""
import os, subprocess, sys, time
n, slots, base, command = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4:]
flags = os.O_WRONLY | os.O_CREAT | os.O_APPEND
running = {}
start = time.perf_counter()
for i in range(n):
    while len(running) >= slots:
        pid, _ = os.waitpid(-1, 0)
        running.pop(pid).returncode = 0
    d = os.path.join(base, str(i))
    os.mkdir(d)
    out = os.open(os.path.join(d, "stdout.log"), flags, 0o644)
    err = os.open(os.path.join(d, "stderr.log"), flags, 0o644)
    child = subprocess.Popen(command, stdout=out, stderr=err, env={**os.environ, "JOB_ID": str(i)})
    os.close(out)
    os.close(err)
    running[child.pid] = child
while running:
    pid, _ = os.waitpid(-1, 0)
    running.pop(pid).returncode = 0
print(time.perf_counter() - start)
"""


def floor_seconds(cfg: Config, directory: Path, count: int, slots: int, command: Sequence[str] = ("true",)) -> float:
    out = run_cmd([cfg.python, "-c", FLOOR_SCRIPT, str(count), str(slots), str(directory), *command], cfg,
                  stdout=subprocess.PIPE)
    return float(out.stdout.decode().strip())
