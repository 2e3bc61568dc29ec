"""``submit --wait``: the progress line says why the jobs wait, with the reason ``status`` gives."""
from __future__ import annotations

import io
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from expq.launcher.wait_command import wait_jobs
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
        waited = pool.submit(wait_jobs, queue, [1, 2], None, stream, 0.01)
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
        waited = pool.submit(wait_jobs, queue, [1], None, stream, 0.01)
        wait_until(lambda: "no live worker" in stream.getvalue(), message=stream.getvalue)
        assert queue.move(job, State.PENDING, State.CANCELLED)  # one rename: no state in between to see
        assert waited.result(timeout=30) == 1
    assert stream.getvalue() == (f"\r[{'-' * 30}] 0/1 ended (0 done); 1 pending: no live worker\x1b[K"
                                 f"\r[{'#' * 30}] 1/1 ended (0 done, 1 cancelled)\x1b[K\n")


def test_a_job_removed_while_waited_on_ends_the_wait(queue: JobQueue, wait_until: Callable[..., object]) -> None:
    first, second = add(queue, 2)
    stream = Stream(tty=False)
    with ThreadPoolExecutor(1) as pool:
        waited = pool.submit(wait_jobs, queue, [1, 2], None, stream, 0.01)
        wait_until(lambda: "2 pending" in stream.getvalue(), message=stream.getvalue)
        finish(queue, first, State.DONE, None)
        queue.paths.job_file(State.PENDING, 2).unlink()
        assert waited.result(timeout=30) == 1  # not every job is done: one is gone
    assert stream.getvalue().splitlines()[-1] == f"[{'#' * 15}{'-' * 15}] 1/2 ended (1 done); 1 no longer in the queue (2)"


def test_a_wait_sleeps_in_proportion_to_what_a_look_costs(queue: JobQueue, monkeypatch: pytest.MonkeyPatch) -> None:
    """A look at a queue of 100,000 jobs costs its listing; the wait then sleeps 24 times as long as it
    looked (at most 4% of a core), and never less than its interval. The clock is a fake one that
    advances when the wait looks (0.01 s, then 2 s a look) or sleeps; the queue is real."""
    from expq.launcher import report, wait_command

    (job,) = add(queue)
    clock = [0.0]
    costs = iter([0.01, 2.0, 2.0, 0.01])
    pauses: list[float] = []
    real_waiting = report.waiting

    def looking(*args: object, **kwargs: object) -> report.Waiting:
        clock[0] += next(costs)
        if len(pauses) == 3:
            finish(queue, job, State.DONE, None)
        return real_waiting(*args, **kwargs)  # type: ignore[arg-type]

    def sleeping(seconds: float) -> None:
        pauses.append(seconds)
        clock[0] += seconds

    monkeypatch.setattr(report, "waiting", looking)
    monkeypatch.setattr(wait_command.time, "monotonic", lambda: clock[0])
    monkeypatch.setattr(wait_command.time, "sleep", sleeping)
    assert wait_jobs(queue, [job.id], None, Stream(tty=False), 0.5) == 0
    assert pauses == pytest.approx([0.5, 48.0, 48.0])
    (waits,) = add(queue)  # never runs: a timeout of 10 s cuts the first long sleep to what is left
    clock[0], costs, pauses[:] = 0.0, iter([2.0, 2.0]), []
    stream = Stream(tty=False)
    assert wait_jobs(queue, [waits.id], 10.0, stream, 0.5) == 1
    assert pauses == pytest.approx([8.0]) and stream.getvalue().endswith("; timed out after 10 s\n")
