"""Workers that outlive the terminal: SIGHUP from a closed pseudo-terminal, ``worker --detach``,
``expq workers`` and ``expq workers stop`` (a request file in the queue, acted on at the heartbeat)."""
from __future__ import annotations

import fcntl
import json
import os
import signal
import subprocess
import sys
import termios
from pathlib import Path

import psutil
import pytest

WORKER_FAST = ["--poll", "0.05", "--heartbeat", "0.2", "--grace", "2", "--gpus", "none"]


def _gate_job(gate: Path, started: Path) -> list[str]:
    code = (f"import os, time\nopen({str(started)!r}, 'a').write(os.environ['EXPQ_ATTEMPT'])\n"
            f"while not os.path.exists({str(gate)!r}) and os.environ['EXPQ_ATTEMPT'] == '1': time.sleep(0.01)")
    return ["--", sys.executable, "-c", code]


def _expq(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "expq", "--root", str(root), *args], capture_output=True, text=True)


def _controlling_tty(pid: int) -> int:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return int(fields[4])  # tty_nr


def _take_terminal() -> None:
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)  # after setsid: stdin's pty becomes the controlling terminal


def test_a_worker_whose_pseudo_terminal_closes_keeps_its_job_running_to_done(cluster, wait_until):
    gate, started = cluster.tmp / "gate", cluster.tmp / "started"
    (job,) = cluster.submit(*_gate_job(gate, started))
    master, slave = os.openpty()
    worker = subprocess.Popen([sys.executable, "-m", "expq", "--root", str(cluster.root), "worker", *WORKER_FAST],
                              stdin=slave, stdout=slave, stderr=slave, start_new_session=True,
                              preexec_fn=_take_terminal)
    cluster.workers.append(worker)
    os.close(slave)
    try:
        wait_until(started.exists, timeout=30, message="job never started")
        assert _controlling_tty(worker.pid) != 0  # the pty really is the worker's terminal
    finally:
        os.close(master)  # the terminal goes away: the kernel sends SIGHUP to its session
    gate.touch()
    cluster.wait_state(job, "done")
    assert worker.poll() is None  # it survived, and goes on serving with nowhere to log
    (second,) = cluster.submit("--", "true")
    cluster.wait_state(second, "done")
    assert started.read_text() == "1"  # one attempt: the job was never interrupted
    (log,) = (cluster.root / "queue" / "workers").glob("*.log")  # on a terminal it also logs to a file
    wait_until(lambda: f"job {second} done" in log.read_text(), timeout=10, message="no log line after the hangup")
    assert log.stat().st_mode & 0o077 == 0  # owner-only, like every file of a private root


@pytest.fixture
def detached(cluster):
    """Worker ids started with --detach; killed at teardown (they are not children of the test)."""
    pids: list[int] = []
    yield pids
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue


def test_detach_starts_a_listed_worker_that_workers_stop_stops_gracefully(cluster, wait_until, detached):
    gate, started = cluster.tmp / "gate", cluster.tmp / "started"
    (job,) = cluster.submit(*_gate_job(gate, started))
    done = _expq(cluster.root, "worker", "--detach", *WORKER_FAST)
    assert done.returncode == 0, done.stderr
    worker_id = done.stdout.strip()
    listed = json.loads(_expq(cluster.root, "workers", "--json").stdout)["workers"]
    assert [w["worker_id"] for w in listed] == [worker_id]
    pid = listed[0]["pid"]
    detached.append(pid)
    assert psutil.Process(pid).ppid() != os.getpid()  # not our child: it lives on its own
    assert os.getsid(pid) == pid  # a session of its own: no terminal to lose
    wait_until(started.exists, timeout=30, message="job never started")
    wait_until(lambda: json.loads(_expq(cluster.root, "workers", "--json").stdout)["workers"][0]["jobs"] == [job],
               timeout=10, message="the worker does not list its running job")
    table = _expq(cluster.root, "workers").stdout
    assert worker_id in table and str(pid) in table

    stop = _expq(cluster.root, "workers", "stop", worker_id[:-2])  # a unique prefix will do
    assert stop.returncode == 0 and stop.stdout == f"{worker_id}\n"
    wait_until(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE,
               timeout=30, message="the worker did not stop")
    assert cluster.state(job) == "pending"
    attempt = json.loads((cluster.run_dir(job) / "attempts" / "1.json").read_text())
    assert attempt["outcome"] == "preempted" and "expq workers stop" in attempt["reason"]
    log = (cluster.root / "queue" / "workers" / f"{worker_id}.log").read_text()
    assert "received expq workers stop" in log
    assert _expq(cluster.root, "workers", "--json").stdout.count("worker_id") == 0
    cluster.drain("--gpus", "none")  # preemption spent no retry: it runs again
    assert cluster.state(job) == "done" and started.read_text() == "12"


def test_workers_stop_by_host_and_all(cluster, wait_until):
    cluster.submit("--", "true")
    here = cluster.worker("--gpus", "none", env={"EXPQ_HOST": "node-a"})
    there = cluster.worker("--gpus", "none", env={"EXPQ_HOST": "node-b"})
    wait_until(lambda: len(json.loads(_expq(cluster.root, "workers", "--json").stdout)["workers"]) == 2, timeout=30)
    assert _expq(cluster.root, "workers", "stop", "--host", "node-a").returncode == 0
    assert here.wait(30) == 0
    assert there.poll() is None
    assert _expq(cluster.root, "workers", "stop", "--all").returncode == 0
    assert there.wait(30) == 0


@pytest.mark.parametrize(("args", "message"), [
    (["stop"], "give worker ids, --host HOST or --all"),
    (["stop", "nobody"], "no such live worker: nobody"),
    (["stop", "--host", "nowhere"], "no such live worker on host: nowhere"),
    (["stop", "x", "--all"], "give worker ids, --host HOST or --all (one of them)"),
])
def test_bad_stop_requests_write_nothing(cluster, args, message):
    cluster.submit("--", "true")
    done = _expq(cluster.root, "workers", *args)
    assert done.returncode == 2 and message in done.stderr
    assert not (cluster.root / "queue" / "stop").exists()


def test_detach_reports_a_worker_that_cannot_start(cluster, tmp_path):
    cluster.submit("--", "true")
    os.chmod(cluster.root / "queue", 0o777)
    try:
        done = _expq(cluster.root, "worker", "--detach", "--gpus", "none")
    finally:
        os.chmod(cluster.root / "queue", 0o755)
    assert done.returncode == 2 and "writable by other users" in done.stderr and done.stdout == ""


def test_worker_logs_are_private_files(cluster, detached):
    cluster.submit("--", "true")
    done = _expq(cluster.root, "worker", "--detach", *WORKER_FAST)
    assert done.returncode == 0, done.stderr
    log = cluster.root / "queue" / "workers" / f"{done.stdout.strip()}.log"
    detached.append(json.loads(_expq(cluster.root, "workers", "--json").stdout)["workers"][0]["pid"])
    assert log.stat().st_mode & 0o077 == 0
