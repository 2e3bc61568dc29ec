"""Fixtures for issue 14's tests (sweeps a researcher can manage): a root, the CLI run as real
child processes, and real worker processes that die at teardown."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from expq.queue.store import JobQueue

FAST = ["--poll", "0.05", "--heartbeat", "0.2", "--grace", "2", "--gpus", "none"]


class Root:
    """One expq root; ``expq`` runs as a child process, as a user runs it."""

    def __init__(self, path: Path, tmp: Path, wait_until: Callable[..., object]) -> None:
        self.path = path
        self.tmp = tmp
        self.wait_until = wait_until
        self.queue = JobQueue(path)
        self.workers: list[subprocess.Popen[bytes]] = []

    def expq(self, *args: str, cwd: Path | None = None, check: bool = False,
             env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "expq", "--root", str(self.path), *args], capture_output=True,
                              text=True, cwd=cwd, env={**os.environ, "COLUMNS": "300", **(env or {})})
        if check:
            assert done.returncode == 0, done.stderr
        return done

    def submit(self, *args: str) -> list[int]:
        return [int(line) for line in self.expq("submit", *args, check=True).stdout.split()]

    def worker(self, *args: str) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"worker-{len(self.workers)}.log", "ab")
        proc = subprocess.Popen([sys.executable, "-m", "expq", "--root", str(self.path), "worker", *FAST, *args],
                                stdout=log, stderr=log)
        log.close()
        self.workers.append(proc)
        return proc

    def drain(self, *args: str, timeout: float = 120) -> None:
        proc = self.worker("--drain", *args)
        assert proc.wait(timeout) == 0, (self.tmp / f"worker-{len(self.workers) - 1}.log").read_text()

    def jobs(self, *args: str) -> dict[int, dict]:
        out = self.expq("status", "--json", "--all", *args, check=True).stdout
        return {job["id"]: job for job in json.loads(out)["jobs"]}

    def state(self, job: int) -> str | None:
        found = self.queue.state_of(job)
        return found.value if found else None

    def wait_state(self, job: int, state: str, timeout: float = 60) -> None:
        self.wait_until(lambda: self.state(job) == state, timeout=timeout,
                        message=lambda: f"job {job} is {self.state(job)}, not {state}")


@pytest.fixture
def root(tmp_path: Path, wait_until: Callable[..., object]) -> Iterator[Root]:
    made = Root(tmp_path / "root", tmp_path, wait_until)
    yield made
    for proc in made.workers:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()


@pytest.fixture
def script(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a Python file for jobs to run."""
    def write(name: str, text: str) -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path
    return write

