"""``Worker.step(now)`` driven directly, with an injected clock: time-based logic without waiting."""
from __future__ import annotations

import json
import time

from expq.launcher.cli import main
from expq.queue.states import State
from expq.queue.store import JobQueue
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
