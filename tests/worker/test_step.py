"""``Worker.step(now)`` driven directly, with an injected clock: time-based logic without waiting."""
from __future__ import annotations

import errno
import json
import time

from expq.launcher.cli import main
from expq.queue.attempts import Attempt
from expq.queue.lease import Lease, write_lease
from expq.queue.states import State
from expq.queue.store import JobQueue
from expq.queue.workers import this_host
from expq.worker.loop import Worker, WorkerOptions


def test_a_timeout_is_judged_by_the_clock_step_is_given(tmp_path, wait_until):
    root = tmp_path / "root"
    assert main(["--root", str(root), "submit", "--timeout", "30", "--", "sleep", "600"]) == 0
    queue = JobQueue(root)
    worker = Worker(queue, WorkerOptions(grace=5, heartbeat=3600, lock_dir=tmp_path / "locks"))
    worker.open()
    try:
        start = time.time()
        assert worker.step(start) and queue.state_of(1) is State.RUNNING
        assert worker.step(start + 29) and worker.jobs[1].stopping is None  # not yet
        worker.step(start + 31)  # thirty-one seconds later, as far as the worker knows
        assert worker.jobs[1].stopping is not None
        wait_until(lambda: not worker.step(time.time()) or queue.state_of(1) is State.FAILED, timeout=20)
    finally:
        worker.close()
    result = json.loads((root / queue.get(1)[1].run_dir / "result.json").read_text())
    assert (result["state"], result["reason"], result["signal"]) == ("failed", "timeout after 30 s", "SIGTERM")


def _disk_full(*args: object, **kwargs: object) -> None:
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_at_the_lease_write_costs_no_job_and_no_worker(tmp_path, monkeypatch, wait_until):
    root = tmp_path / "root"
    assert main(["--root", str(root), "submit", "--", "true"]) == 0
    queue = JobQueue(root)
    worker = Worker(queue, WorkerOptions(heartbeat=3600, lock_dir=tmp_path / "locks"))
    worker.open()
    try:
        with monkeypatch.context() as patch:
            patch.setattr("expq.worker.job.write_lease", _disk_full)  # the injected fault
            assert worker.step(time.time())
        assert worker.paused is not None and "disk full" in worker.paused
        assert queue.state_of(1) is State.PENDING and not worker.jobs  # back, unharmed
        assert not (root / queue.get(1)[1].run_dir / "attempts").exists()  # no retry spent
        wait_until(lambda: worker.step(time.time()) and queue.state_of(1) is State.DONE, timeout=20)
        assert worker.paused is None
    finally:
        worker.close()


def test_a_full_disk_while_recovering_an_orphan_costs_that_record_only(tmp_path, monkeypatch):
    root = tmp_path / "root"
    assert main(["--root", str(root), "submit", "--retries", "1", "--", "true"]) == 0
    queue = JobQueue(root)
    spec = queue.get(1)[1]
    assert queue.move(spec, State.PENDING, State.RUNNING, claim="0badc1a1")
    dead = Lease(1, Attempt(1, this_host(), "gone", 1.0), 999_999_999, 1.0, "0badc1a1")
    write_lease(queue.paths, dead)
    worker = Worker(queue, WorkerOptions(heartbeat=3600, lock_dir=tmp_path / "locks", max_jobs=0))
    worker.open()
    try:
        with monkeypatch.context() as patch:
            patch.setattr("expq.queue.reaper.finish_attempt", _disk_full)
            worker._heartbeat(time.time())
        assert queue.state_of(1) is State.PENDING  # recovered all the same
    finally:
        worker.close()
