"""Fixtures for executor tests: a fresh root and real ``expq worker`` processes serving it."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from expq.queue.store import JobQueue

FAST = ["--poll", "0.05", "--heartbeat", "0.2", "--grace", "2"]


class Workers:
    """Starts workers on one root; each is stopped (SIGTERM, then SIGKILL) at teardown."""

    def __init__(self, root: Path, tmp: Path) -> None:
        self.root = root
        self.tmp = tmp
        self.procs: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str, slots: int = 1) -> subprocess.Popen[bytes]:
        """Start a worker; the queue is created first, since a worker refuses a root without one."""
        JobQueue(self.root).create()
        locks = self.tmp / "gpu-locks"  # the test's own, not the host's: no GPU a test uses is held
        locks.mkdir(exist_ok=True)
        log = open(self.tmp / f"worker-{len(self.procs)}.log", "ab")
        env = {**os.environ, "EXPQ_GPU_LOCK_DIR": str(locks)}
        proc = subprocess.Popen([sys.executable, "-m", "expq", "--root", str(self.root), "worker", "--gpus", "none",
                                 "--slots", str(slots), *FAST, *args], stdout=log, stderr=log, env=env)
        log.close()
        self.procs.append(proc)
        return proc

    def log(self, index: int = 0) -> str:
        return (self.tmp / f"worker-{index}.log").read_text()

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "root"


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    """Keep each phase's report on the test, so a fixture can tell at teardown that the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture
def workers(root: Path, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Workers]:
    """Workers of the test's root; when the test failed, their logs are shown (a worker that died
    leaves jobs pending, and the test only sees a timeout)."""
    helper = Workers(root, tmp_path)
    yield helper
    helper.stop()
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        for index in range(len(helper.procs)):
            sys.stdout.write(f"--- worker {index} (exit {helper.procs[index].returncode}) ---\n{helper.log(index)}")


def expq_cli(root: Path, *args: str) -> str:
    """``python -m expq --root ROOT ARGS`` in a child process; its stdout."""
    return subprocess.run([sys.executable, "-m", "expq", "--root", str(root), *args], capture_output=True,
                          text=True, check=True).stdout


@pytest.fixture
def status():
    """The jobs of a root as ``expq status --json`` lists them, by id."""
    def read(root: Path) -> dict[int, dict]:
        return {job["id"]: job for job in json.loads(expq_cli(root, "status", "--json"))["jobs"]}
    return read
