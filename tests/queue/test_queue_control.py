"""cancel and retry: every id is checked before anything changes."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from expq.errors import InputError, NotFound
from expq.queue.attempts import Attempt, Outcome, failures, finish_attempt
from expq.queue.control import cancel, retry
from expq.queue.ids import allocate_ids
from expq.queue.spec import JobSpec
from expq.queue.states import State
from expq.queue.store import JobQueue


@pytest.fixture
def queue(tmp_path: Path) -> JobQueue:
    queue = JobQueue(tmp_path / "root").create()
    specs = [JobSpec(id=job, experiment="e", name=f"j{job}", command=("true",), run_dir=f"experiments/e/{job}-j{job}",
                     cwd="/", submitted_at=0.0) for job in allocate_ids(queue.paths, 4)]
    queue.enqueue(specs)
    return queue


def states(queue: JobQueue) -> dict[int, State | None]:
    return {job: queue.state_of(job) for job in (1, 2, 3, 4)}


def test_cancel_pending_is_immediate_and_running_is_a_request(queue: JobQueue) -> None:
    _, running = queue.get(2)
    queue.move(running, State.PENDING, State.RUNNING)
    assert cancel(queue, [1, 2]) == {1: "cancelled", 2: "cancel requested"}
    assert queue.state_of(1) is State.CANCELLED
    assert queue.state_of(2) is State.RUNNING and queue.paths.cancel_file(2).exists()
    result = json.loads(queue.paths.run(queue.get(1)[1].run_dir).result.read_bytes())
    assert (result["state"], result["reason"]) == ("cancelled", "cancelled by user")


def test_cancel_with_an_unknown_id_changes_nothing(queue: JobQueue) -> None:
    before = states(queue)
    with pytest.raises(NotFound, match="^no such job: 9$"):
        cancel(queue, [1, 9, 2])
    assert states(queue) == before
    assert list(queue.paths.cancel_requests.iterdir()) == []


def test_cancel_of_a_finished_job_is_refused_before_any_change(queue: JobQueue) -> None:
    _, spec = queue.get(3)
    queue.move(spec, State.PENDING, State.RUNNING)
    queue.move(spec, State.RUNNING, State.DONE)
    with pytest.raises(InputError, match="^cannot cancel job 3: it is done"):
        cancel(queue, [1, 3])
    assert queue.state_of(1) is State.PENDING


def test_retry_requeues_with_a_fresh_budget_and_keeps_the_logs(queue: JobQueue) -> None:
    _, spec = queue.get(1)
    run = queue.paths.run(spec.run_dir)
    queue.move(spec, State.PENDING, State.RUNNING)
    finish_attempt(run, Attempt(number=1, host="h", worker_id="w", started_at=1.0), outcome=Outcome.FAILED)
    run.stdout.write_text("attempt 1\n")
    queue.move(spec, State.RUNNING, State.FAILED)
    assert failures(run) == 1
    assert retry(queue, [1]) == [1]
    assert queue.state_of(1) is State.PENDING and failures(run) == 0
    assert run.stdout.read_text() == "attempt 1\n"


def test_retry_of_a_pending_job_or_unknown_id_changes_nothing(queue: JobQueue) -> None:
    cancel(queue, [1])
    before = states(queue)
    with pytest.raises(InputError, match="^cannot retry job 2: it is pending"):
        retry(queue, [1, 2])
    with pytest.raises(NotFound):
        retry(queue, [1, 77])
    assert states(queue) == before
