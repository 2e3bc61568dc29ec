"""``submit --wait``: the progress line says why the jobs wait, with the reason ``status`` gives."""
from __future__ import annotations

import io
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from expq.launcher import render
from expq.queue.states import State
from expq.queue.store import JobQueue

sys.path.insert(0, str(Path(__file__).parent))
from test_report import add, finish, start, write_worker  # noqa: E402


class Stream(io.StringIO):
    """A stream that reports whether it is a terminal, like the real stderr."""

    def __init__(self, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


@pytest.fixture
def queue(tmp_path: Path) -> JobQueue:
    return JobQueue(tmp_path / "root").create()


def test_the_progress_line_says_why_jobs_wait(queue: JobQueue, wait_until: Callable[..., object]) -> None:
    first, second = add(queue, 2, gpus=2)
    stream = Stream(tty=False)
    with ThreadPoolExecutor(1) as pool:
        waited = pool.submit(render.wait_for, queue, [1, 2], stream, 0.01)
        wait_until(lambda: "2 pending: no live worker" in stream.getvalue(), message=stream.getvalue)
        write_worker(queue, "small", 1)
        wait_until(lambda: "2 pending: needs 2 GPUs (largest worker has 1)" in stream.getvalue(),
                   message=stream.getvalue)
        write_worker(queue, "big", 2)
        start(queue, first)
        wait_until(lambda: stream.getvalue().endswith("0/2 ended (0 done); 1 running, 1 pending\n"),
                   message=stream.getvalue)
        finish(queue, first, State.DONE, None)
        assert queue.move(second, State.PENDING, State.CANCELLED)
        assert waited.result(timeout=30) == 1  # one was cancelled
    lines = stream.getvalue().splitlines()
    assert lines[0] == f"[{'-' * 30}] 0/2 ended (0 done); 2 pending: no live worker"
    assert lines[-1] == f"[{'#' * 30}] 2/2 ended (1 done, 1 cancelled)"
    assert len(lines) == len(set(lines))  # a line is written when it changes, not at every poll


def test_on_a_terminal_the_line_is_redrawn_in_place(queue: JobQueue, wait_until: Callable[..., object]) -> None:
    (job,) = add(queue)
    stream = Stream(tty=True)
    with ThreadPoolExecutor(1) as pool:
        waited = pool.submit(render.wait_for, queue, [1], stream, 0.01)
        wait_until(lambda: "no live worker" in stream.getvalue(), message=stream.getvalue)
        assert queue.move(job, State.PENDING, State.CANCELLED)  # one rename: no state in between to see
        assert waited.result(timeout=30) == 1
    assert stream.getvalue() == (f"\r[{'-' * 30}] 0/1 ended (0 done); 1 pending: no live worker\x1b[K"
                                 f"\r[{'#' * 30}] 1/1 ended (0 done, 1 cancelled)\x1b[K\n")


def test_a_job_removed_while_waited_on_ends_the_wait(queue: JobQueue, wait_until: Callable[..., object]) -> None:
    first, second = add(queue, 2)
    stream = Stream(tty=False)
    with ThreadPoolExecutor(1) as pool:
        waited = pool.submit(render.wait_for, queue, [1, 2], stream, 0.01)
        wait_until(lambda: "2 pending" in stream.getvalue(), message=stream.getvalue)
        finish(queue, first, State.DONE, None)
        queue.paths.job_file(State.PENDING, 2).unlink()
        assert waited.result(timeout=30) == 1  # not every job is done: one is gone
    assert stream.getvalue().splitlines()[-1] == f"[{'#' * 15}{'-' * 15}] 1/2 ended (1 done); 1 no longer in the queue (2)"
