"""``expq logs``: print a job's log as bytes; ``-f`` follows until the job has ended."""
from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from expq.launcher.cli import main
from expq.launcher.logs import follow
from expq.queue.states import State
from expq.queue.store import JobQueue


@pytest.fixture
def root(tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> Path:
    root = tmp_path / "root"
    assert main(["--root", str(root), "submit", "--", "train"]) == 0
    capsysbinary.readouterr()
    return root


def run_dir(root: Path, job: int = 1) -> Path:
    queue = JobQueue(root)
    return queue.paths.run(queue.get(job)[1].run_dir).dir


def test_prints_stdout_or_stderr_byte_for_byte(root: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    run = run_dir(root)
    run.mkdir(parents=True)
    (run / "stdout.log").write_bytes(b"step 1\r\nloss \xff\xfe\n" + b"x" * 200_000)
    (run / "stderr.log").write_bytes(b"warning\n")
    assert main(["--root", str(root), "logs", "1"]) == 0
    assert capsysbinary.readouterr().out == b"step 1\r\nloss \xff\xfe\n" + b"x" * 200_000
    assert main(["--root", str(root), "logs", "--stderr", "1"]) == 0
    assert capsysbinary.readouterr().out == b"warning\n"


def test_a_fifo_in_a_logs_place_is_one_line_not_a_wait(root: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    run = run_dir(root)
    run.mkdir(parents=True)
    os.mkfifo(run / "stdout.log")  # the job may leave anything in its run directory
    queue = JobQueue(root)
    spec = queue.get(1)[1]
    assert queue.move(spec, State.PENDING, State.RUNNING, claim="f1f0f1f0")
    assert queue.move(spec, State.RUNNING, State.DONE, claim="f1f0f1f0")
    for argv in (["logs", "1"], ["logs", "-f", "1"]):
        result = subprocess.run([sys.executable, "-m", "expq", "--root", str(root), *argv], capture_output=True,
                                text=True, timeout=60)
        assert (result.returncode, result.stdout) == (1, "")
        assert result.stderr == f"expq: error: {run / 'stdout.log'} is not a regular file\n"


def test_a_pending_job_has_not_started(root: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    assert main(["--root", str(root), "logs", "1"]) == 1
    assert capsysbinary.readouterr() == (
        b"", b"expq: error: job 1 has not started yet (pending: no live worker): no stdout.log so far\n")
    assert main(["--root", str(root), "logs", "--stderr", "1"]) == 1
    assert capsysbinary.readouterr().err.endswith(b": no stderr.log so far\n")


def test_a_requeued_pending_job_prints_its_earlier_output(root: Path,
                                                         capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    run = run_dir(root)
    run.mkdir(parents=True)
    (run / "stdout.log").write_bytes(b"attempt 1\n")
    assert main(["--root", str(root), "logs", "1"]) == 0
    assert capsysbinary.readouterr() == (b"attempt 1\n", b"")


def test_jobs_that_never_started_or_just_did(root: Path, capsysbinary: pytest.CaptureFixture[bytes]) -> None:
    queue = JobQueue(root)
    assert main(["--root", str(root), "submit", "--", "train"]) == 0
    capsysbinary.readouterr()
    queue.move(queue.get(1)[1], State.PENDING, State.CANCELLED)
    assert main(["--root", str(root), "logs", "1"]) == 1
    assert capsysbinary.readouterr() == (b"", b"expq: error: job 1 was cancelled before it started: it has no "
                                              b"stdout.log\n")
    queue.move(queue.get(2)[1], State.PENDING, State.RUNNING)  # claimed, its log not created yet: empty so far
    assert main(["--root", str(root), "logs", "2"]) == 0
    assert capsysbinary.readouterr() == (b"", b"")


def test_follow_copies_until_ended_and_drained(tmp_path: Path) -> None:
    log = tmp_path / "stdout.log"
    out = io.BytesIO()
    state = {"ended": False}
    script = iter([
        lambda: None,                                   # no file yet: waits for it
        lambda: log.write_bytes(b"a\n"),
        lambda: None,                                   # no new data: waits
        lambda: log.open("ab").write(b"b\n"),
        lambda: state.update(ended=True),               # ended, but a last line arrived before that
    ])

    def nap(_: float) -> None:
        next(script)()
        if state["ended"]:
            log.open("ab").write(b"last\n")

    follow(log, lambda: state["ended"], out, poll=0.0, sleep=nap)
    assert out.getvalue() == b"a\nb\nlast\n"


def test_follow_of_a_job_that_ended_without_a_log_returns(tmp_path: Path) -> None:
    out = io.BytesIO()
    follow(tmp_path / "never.log", lambda: True, out)
    assert out.getvalue() == b""


def test_logs_follow_a_running_job_until_it_ends(root: Path, wait_until: Callable[..., object]) -> None:
    queue = JobQueue(root)
    _, spec = queue.get(1)
    queue.move(spec, State.PENDING, State.RUNNING)
    log = run_dir(root) / "stdout.log"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "expq", "--root", str(root), "logs", "-f", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    try:
        log.parent.mkdir(parents=True)
        with log.open("ab") as handle:
            handle.write(b"epoch 1\n")
            handle.flush()
            line = proc.stdout.readline()  # type: ignore[union-attr]
            assert line == b"epoch 1\n"
            handle.write(b"epoch 2\n")
        queue.move(spec, State.RUNNING, State.DONE)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill() if proc.poll() is None else None
    assert (proc.returncode, out, err) == (0, b"epoch 2\n", b"")


def test_follow_of_a_pending_job_says_why_it_waits(root: Path) -> None:
    queue = JobQueue(root)
    _, spec = queue.get(1)
    proc = subprocess.Popen([sys.executable, "-m", "expq", "--root", str(root), "logs", "-f", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        line = proc.stderr.readline()  # type: ignore[union-attr]
        assert line == (b"expq: job 1 has not started yet (pending: no live worker): no stdout.log so far; "
                        b"waiting for it to start (Ctrl-C stops)\n")
        queue.move(spec, State.PENDING, State.RUNNING)
        log = run_dir(root) / "stdout.log"
        log.parent.mkdir(parents=True)
        log.write_bytes(b"started\n")
        queue.move(spec, State.RUNNING, State.DONE)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill() if proc.poll() is None else None
    assert (proc.returncode, out, err) == (0, b"started\n", b"")
