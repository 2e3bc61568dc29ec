"""An idle worker polls less and less often, and the queue's change signal wakes it at once."""
from __future__ import annotations

import select

from expq.queue.states import State
from expq.queue.store import JobQueue, signal_change
from expq.worker.wakeup import ChangeWatch


def test_the_change_watch_becomes_readable_when_the_signal_moves(tmp_path):
    queue = JobQueue(tmp_path / "root").create()
    watch = ChangeWatch(queue.paths.changed)
    assert watch.fd is None  # made when first needed
    assert watch.arm() and not watch.arm()
    assert watch.fd is not None
    assert select.select([watch.fd], [], [], 0)[0] == []
    signal_change(queue.paths)
    assert select.select([watch.fd], [], [], 5)[0] == [watch.fd]
    watch.drain()
    assert select.select([watch.fd], [], [], 0)[0] == []
    watch.close()


def test_a_worker_polling_every_minute_starts_a_new_job_as_soon_as_it_is_submitted(cluster, wait_until):
    cluster.submit("--", "true")
    cluster.worker("--gpus", "none", "--poll", "60", "--heartbeat", "60", fast=False)
    wait_until(lambda: cluster.queue.counts()[State.DONE] == 1, timeout=30)
    (later,) = cluster.submit("--", "true")  # nothing but the change signal can wake it within the minute
    cluster.wait_state(later, "done", timeout=30)
