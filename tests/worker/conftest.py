"""Fixtures for worker tests: a fresh root, submitting through the real CLI, real worker processes."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from expq.launcher.cli import main
from expq.queue.store import JobQueue

FAST = ["--poll", "0.05", "--heartbeat", "0.2", "--grace", "2"]


class Cluster:
    """One expq root and the worker processes a test started on it (all killed at teardown)."""

    def __init__(self, root: Path, tmp: Path, wait_until: Callable[..., object]) -> None:
        self.root = root
        self.wait_until = wait_until
        self.tmp = tmp
        self.queue = JobQueue(root)
        self.workers: list[subprocess.Popen[bytes]] = []
        self.lock_dir = tmp / "gpu-locks"

    def submit(self, *args: str, capsys: pytest.CaptureFixture[str] | None = None) -> list[int]:
        """``expq submit`` in a child process (ids from its stdout)."""
        out = subprocess.run([sys.executable, "-m", "expq", "--root", str(self.root), "submit", *args],
                             capture_output=True, text=True, check=True).stdout
        return [int(line) for line in out.split()]

    def cli(self, *args: str) -> int:
        return main(["--root", str(self.root), *args])

    def worker(self, *args: str, env: dict[str, str] | None = None, fast: bool = True) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"worker-{len(self.workers)}.log", "ab")
        full_env = {**os.environ, "EXPQ_GPU_LOCK_DIR": str(self.lock_dir), **(env or {})}
        proc = subprocess.Popen([sys.executable, "-m", "expq", "--root", str(self.root), "worker",
                                 *(FAST if fast else []), *args], stdout=log, stderr=log, env=full_env)
        log.close()
        self.workers.append(proc)
        return proc

    def drain(self, *args: str, timeout: float = 60) -> None:
        """Run one worker with ``--drain`` to completion; fail the test on a non-zero exit."""
        proc = self.worker("--drain", *args)
        assert proc.wait(timeout) == 0, self.worker_log(len(self.workers) - 1)

    def worker_log(self, index: int = 0) -> str:
        return (self.tmp / f"worker-{index}.log").read_text()

    def job(self, job_id: int) -> dict:
        """The job as ``status --json`` reports it."""
        out = subprocess.run([sys.executable, "-m", "expq", "--root", str(self.root), "status", "--json",
                              str(job_id)], capture_output=True, text=True, check=True).stdout
        (job,) = json.loads(out)["jobs"]
        return job

    def state(self, job_id: int) -> str | None:
        found = self.queue.state_of(job_id)
        return found.value if found else None

    def result(self, job_id: int) -> dict:
        return json.loads((Path(self.job(job_id)["run_dir"]) / "result.json").read_text())

    def wait_state(self, job_id: int, state: str, timeout: float = 30) -> None:
        """Poll the queue until ``job_id`` reaches ``state``."""
        self.wait_until(lambda: self.state(job_id) == state, timeout=timeout,
                        message=lambda: f"job {job_id} is {self.state(job_id)}, not {state}")

    def run_dir(self, job_id: int) -> Path:
        _, spec = self.queue.get(job_id)
        return self.root / spec.run_dir


@pytest.fixture
def make_cluster(tmp_path: Path, wait_until: Callable[..., object]) -> Iterator[Callable[[Path], Cluster]]:
    """Clusters on roots of the test's choosing; every worker they started dies at teardown."""
    made: list[Cluster] = []

    def make(root: Path) -> Cluster:
        made.append(Cluster(root, tmp_path, wait_until))
        made[-1].workers = made[0].workers  # one list, so worker logs are numbered across clusters
        return made[-1]

    yield make
    for proc in made[0].workers if made else []:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()


@pytest.fixture
def cluster(make_cluster: Callable[[Path], Cluster], tmp_path: Path) -> Cluster:
    return make_cluster(tmp_path / "root")

