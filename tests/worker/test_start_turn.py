"""Workers starting on one host take turns (``expq.worker.start_turn``): real flocks, real processes."""
from __future__ import annotations

import fcntl
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from expq.worker import start_turn
from tests.worker.conftest import Cluster

SEATS = len(os.sched_getaffinity(0))  # what a worker started from here counts


@contextmanager
def seats_held(lock_dir: Path, count: int = SEATS) -> Iterator[subprocess.Popen[str]]:
    """Another process holding the first ``count`` seats until the block ends."""
    code = ("import fcntl, os, sys\n"
            f"for n in range({count}):\n"
            f"    fd = os.open(os.path.join({str(lock_dir)!r}, f'start-{{n}}.lock'), os.O_RDWR | os.O_CREAT, 0o600)\n"
            "    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
            "print('held', flush=True)\n"
            "sys.stdin.read()\n")
    lock_dir.mkdir(mode=0o700, exist_ok=True)
    holder = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "held\n"
        yield holder
    finally:
        holder.kill()
        holder.wait()


def waiting_for_a_seat(lock_dir: Path) -> bool:
    """Whether some process is blocked in ``flock`` on one of the seat files (``/proc/locks``)."""
    inodes = {f":{os.stat(seat).st_ino} " for seat in lock_dir.glob("start-*.lock")}
    return any(" -> FLOCK " in line and any(inode in line for inode in inodes)
               for line in Path("/proc/locks").read_text().splitlines())


def all_seats_free(lock_dir: Path, count: int = SEATS) -> bool:
    fds = [os.open(lock_dir / f"start-{n}.lock", os.O_RDWR | os.O_CREAT, 0o600) for n in range(count)]
    try:
        for fd in fds:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        for fd in fds:
            os.close(fd)


def test_a_worker_waits_for_a_free_seat_before_it_starts_anything(cluster: Cluster,
                                                                  wait_until: Callable[..., object]) -> None:
    (job,) = cluster.submit("--", "true")
    with seats_held(cluster.lock_dir):
        worker = cluster.worker("--drain")
        wait_until(lambda: waiting_for_a_seat(cluster.lock_dir), message="the worker never waited for a seat")
        assert worker.poll() is None
        assert cluster.state(job) == "pending"  # nothing claimed while it waits
        assert list(cluster.queue.paths.workers.iterdir()) == []  # not even announced
    assert worker.wait(60) == 0, cluster.worker_log()
    assert cluster.state(job) == "done"


def test_the_seat_is_given_back_once_the_first_jobs_run_and_no_job_holds_it(
        cluster: Cluster, tmp_path: Path, wait_until: Callable[..., object]) -> None:
    started = tmp_path / "started"
    cluster.submit("--", "sh", "-c", f": > {started}; exec sleep 600")
    worker = cluster.worker()
    wait_until(started.exists, timeout=30, message=lambda: cluster.worker_log())
    # The job's shell (and its sleep) outlive the worker's first step: had they inherited the seat's
    # descriptor, they would hold the seat for as long as they run.
    wait_until(lambda: all_seats_free(cluster.lock_dir), message="a seat stays taken while the job runs")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(60) == 0


def test_a_worker_that_waits_too_long_starts_without_a_turn(tmp_path: Path,
                                                            wait_until: Callable[..., object]) -> None:
    env = {"EXPQ_GPU_LOCK_DIR": str(tmp_path / "locks")}
    try:
        with seats_held(tmp_path / "locks", count=1):
            assert start_turn.take_turn(env, seats=1, timeout=0.2) is False
        # The waiting thread still gets the seat once it is free, and lets it go at once.
        wait_until(lambda: start_turn.take_turn(env, seats=1, timeout=0.2), timeout=10)
    finally:
        start_turn.end_turn()
    assert all_seats_free(tmp_path / "locks", count=1)


def test_an_unsafe_lock_folder_means_no_turn_and_no_wait(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o777)
    shared.chmod(0o777)  # another user could hold every seat, or swap the files
    assert start_turn.take_turn({"EXPQ_GPU_LOCK_DIR": str(shared)}, seats=1, timeout=30) is False
    assert list(shared.iterdir()) == []


@pytest.mark.parametrize(("argv", "takes_turn"), [
    (["worker", "--drain"], True), (["--root", "r", "worker"], True), (["--root", "worker", "status"], False),
    (["worker", "--detach"], False), (["status"], False), (["--help", "worker"], False)])
def test_only_a_worker_in_the_foreground_takes_a_turn(argv: list[str], takes_turn: bool, tmp_path: Path) -> None:
    # the command itself is replaced: what is asked is whether a seat was held while it ran
    code = ("import sys\nfrom expq.launcher import cli, entry\n"
            "def command():\n"
            "    turn = sys.modules.get('expq.worker.start_turn')\n"
            "    print(turn is not None and turn._held is not None)\n"
            "    return 0\n"
            "cli.main = command\n"
            f"sys.argv = ['expq', *{argv!r}]\n"
            "entry.main()\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True,
                         env={**os.environ, "EXPQ_GPU_LOCK_DIR": str(tmp_path / "locks")}).stdout
    assert out == f"{takes_turn}\n"


def test_a_worker_whose_lock_folder_is_unusable_starts_without_a_turn(cluster: Cluster, tmp_path: Path) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the lock folder should be")
    (job,) = cluster.submit("--", "true")
    cluster.worker("--drain", env={"EXPQ_GPU_LOCK_DIR": str(blocked)})
    assert cluster.workers[-1].wait(60) == 0, cluster.worker_log()
    assert cluster.state(job) == "done"
