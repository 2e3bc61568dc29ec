"""Claiming in schedule order, dependencies, and specs that must not run (malformed or insecure)."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from expq.errors import InsecureQueue, NotFound
from expq.queue.claim import Claimer, dependency_block
from expq.queue.ids import allocate_ids, last_id
from expq.queue.spec import JobSpec
from expq.queue.states import State
from expq.queue.store import JobQueue


@pytest.fixture
def queue(tmp_path: Path) -> JobQueue:
    return JobQueue(tmp_path / "root").create()


def submit(queue: JobQueue, count: int = 1, **fields: object) -> list[JobSpec]:
    specs = [JobSpec(**{"id": job, "experiment": "e", "name": f"j{job}", "command": ("true",),
                        "run_dir": f"experiments/e/{job}-j{job}", "cwd": "/", "submitted_at": 0.0, **fields})
             for job in allocate_ids(queue.paths, count)]
    queue.enqueue(specs)
    return specs


TOKENS: dict[int, str] = {}  # job id -> the token of its latest claim


def claim_all(queue: JobQueue, fits=lambda spec: True) -> list[int]:  # noqa: ANN001
    claimer = Claimer(queue, relist_interval=0)
    claimed = []
    while (got := claimer.claim(lambda spec: "slot" if fits(spec) else None, lambda slot: None)) is not None:
        claimed.append(got.spec.id)
        TOKENS[got.spec.id] = got.token
    return claimed


def test_enqueue_makes_specs_visible_and_readable(queue: JobQueue) -> None:
    specs = submit(queue, 3)
    assert queue.list_ids(State.PENDING) == [1, 2, 3]
    assert queue.counts() == {State.PENDING: 3, State.RUNNING: 0, State.DONE: 0, State.FAILED: 0, State.CANCELLED: 0}
    assert queue.get(2) == (State.PENDING, specs[1])
    assert os.listdir(queue.paths.incoming) == []
    assert last_id(queue.paths) == 3


def test_get_unknown_job_is_not_found(queue: JobQueue) -> None:
    with pytest.raises(NotFound, match="^no such job: 42$"):
        queue.get(42)


def test_higher_priority_first_then_submission_order(queue: JobQueue) -> None:
    submit(queue, 2, priority=0)           # 1, 2
    submit(queue, 2, priority=10)          # 3, 4
    submit(queue, 1, priority=-5)          # 5
    submit(queue, 1, priority=9999)        # 6
    submit(queue, 1, priority=-9999)       # 7
    assert claim_all(queue) == [6, 3, 4, 1, 2, 5, 7]
    assert queue.list_ids(State.RUNNING) == [1, 2, 3, 4, 5, 6, 7]


def test_a_job_that_does_not_fit_is_skipped_not_lost(queue: JobQueue) -> None:
    submit(queue, 1, gpus=4)
    submit(queue, 1, gpus=1)
    assert claim_all(queue, fits=lambda spec: spec.gpus <= 2) == [2]
    assert queue.list_ids(State.PENDING) == [1]


def test_dependency_waits_until_done(queue: JobQueue) -> None:
    (first,) = submit(queue)
    (second,) = submit(queue, after=(first.id,), priority=100)
    assert dependency_block(queue, second) == ("wait", first.id)
    assert claim_all(queue) == [first.id]  # the dependent one, though higher priority, waits
    assert dependency_block(queue, second) == ("wait", first.id)
    queue.move(first, State.RUNNING, State.DONE, claim=TOKENS[first.id])
    assert dependency_block(queue, second) is None
    assert claim_all(queue) == [second.id]


@pytest.mark.parametrize("outcome", [State.FAILED, State.CANCELLED])
def test_a_failed_dependency_cancels_the_dependent_job_with_a_reason(queue: JobQueue, outcome: State) -> None:
    (first,) = submit(queue)
    (second,) = submit(queue, after=(first.id,))
    (third,) = submit(queue, after=(second.id,))
    assert claim_all(queue) == [first.id]
    queue.move(first, State.RUNNING, outcome, claim=TOKENS[first.id])
    assert dependency_block(queue, second) == ("cancel", first.id)
    assert claim_all(queue) == []
    assert queue.state_of(second.id) is State.CANCELLED
    result = json.loads(queue.paths.run(second.run_dir).result.read_bytes())
    assert result["state"] == "cancelled" and result["reason"] == f"dependency {first.id} {outcome.value}"
    # and the cancellation travels down the chain
    assert claim_all(queue) == []
    assert queue.state_of(third.id) is State.CANCELLED


def test_malformed_spec_is_moved_aside_with_its_reason(queue: JobQueue) -> None:
    submit(queue, 2)
    bad = queue.paths.state_dir(State.PENDING) / queue.paths.file_name(State.PENDING, 99)
    bad.write_text('{"version": 1, "id": 99, "surprise": true}')
    assert claim_all(queue) == [1, 2]
    assert not bad.exists()
    reason = (queue.paths.rejected / bad.name).with_suffix(".reason").read_text()
    assert reason.startswith("invalid job spec")


def test_group_writable_spec_is_refused(queue: JobQueue) -> None:
    (spec,) = submit(queue)
    path = queue.paths.job_file(State.PENDING, spec.id)
    os.chmod(path, 0o664)
    assert claim_all(queue) == []
    assert "writable by other users" in (queue.paths.rejected / path.name).with_suffix(".reason").read_text()


@pytest.mark.parametrize("where", ["queue", "pending", "incoming"])
def test_group_writable_queue_directory_is_refused_with_the_fix(queue: JobQueue, where: str) -> None:
    queue.check_secure()
    directory = {"queue": queue.paths.queue, "pending": queue.paths.state_dir(State.PENDING),
                 "incoming": queue.paths.incoming}[where]
    os.chmod(directory, 0o775)
    with pytest.raises(InsecureQueue) as info:
        queue.check_secure()
    assert info.value.path == directory
    assert str(info.value) == (f"refusing {directory}: writable by other users (mode 775), so anyone could "
                               f"queue commands you would run; fix: chmod go-w '{directory}'")
    assert info.value.exit_code == 2


def test_create_ignores_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0o002)
    try:
        queue = JobQueue(tmp_path / "root").create()
    finally:
        os.umask(old)
    queue.check_secure()
