"""Picking one experiment's jobs by reading every spec (``--after-experiment``, ``wait --experiment``):
the same jobs whether forked helpers share the reading or not, and a job that moves on after the
listing is found where it went (real files, real forks)."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from expq.queue import selection
from expq.queue.ids import allocate_ids
from expq.queue.selection import jobs_of_experiment, state_in
from expq.queue.spec import JobSpec
from expq.queue.states import State
from expq.queue.store import JobQueue


@pytest.fixture
def queue(tmp_path: Path) -> JobQueue:
    return JobQueue(tmp_path / "root").create()


def add(queue: JobQueue, count: int, experiment: str, **fields: object) -> list[JobSpec]:
    specs = [JobSpec(**{"id": job, "experiment": experiment, "name": f"run{job}", "command": ("true",),
                        "run_dir": f"experiments/{experiment}/{job}-run{job}", "cwd": "/work", "submitted_at": 1.0,
                        **fields})
             for job in allocate_ids(queue.paths, count)]
    queue.enqueue(specs)
    return specs


def test_helpers_pick_the_jobs_one_process_picks(queue: JobQueue, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(selection, "_BLOCK", 3)  # 11 blocks: every helper gets some
    mine = add(queue, 10, "mine", gpus=1) + add(queue, 6, "mine", priority=5)
    theirs = add(queue, 12, "theirs") + add(queue, 3, "theirs", gpus=2)
    for spec in (mine[0], mine[7], theirs[0]):
        assert queue.move(spec, State.PENDING, State.CANCELLED)
    queue.paths.pending_file(mine[3]).write_text('{"experiment": "mine", "version"')  # torn: not picked
    queue.paths.pending_file(mine[4]).unlink()
    os.mkfifo(queue.paths.pending_file(mine[4]))  # not a regular file: not picked, never blocks
    (queue.paths.state_dir(State.DONE) / "notes.json").write_text('{"experiment": "mine"}')  # no job's name
    expected = {spec.id: State.PENDING for spec in mine if spec not in (mine[3], mine[4])}
    expected.update({mine[0].id: State.CANCELLED, mine[7].id: State.CANCELLED})
    picked = [jobs_of_experiment(queue, "mine", helpers=helpers) for helpers in (0, 1, 2)]
    assert picked[0] == dict(sorted(expected.items())) and list(picked[0]) == sorted(expected)
    assert picked[1] == picked[0] and picked[2] == picked[0]
    assert jobs_of_experiment(queue, "mine", states=[State.CANCELLED], helpers=1) == {
        mine[0].id: State.CANCELLED, mine[7].id: State.CANCELLED}
    assert jobs_of_experiment(queue, "nobody", helpers=1) == {}


def test_a_job_that_moved_after_the_listing_is_read_where_it_is(queue: JobQueue) -> None:
    """Every file is listed before any is read: one that moved on meanwhile is looked up by id."""
    spec, other = add(queue, 2, "mine")
    listed = os.fspath(queue.paths.pending_file(spec))
    assert queue.move(spec, State.PENDING, State.CANCELLED)
    assert state_in(queue, "mine", State.PENDING, listed) is State.CANCELLED
    assert state_in(queue, "theirs", State.PENDING, listed) is None
    gone = os.fspath(queue.paths.pending_file(other))
    os.unlink(gone)  # removed meanwhile: not picked
    assert state_in(queue, "mine", State.PENDING, gone) is None


def test_rm_reads_whole_only_the_specs_of_its_experiment(queue: JobQueue, monkeypatch: pytest.MonkeyPatch) -> None:
    """``rm --experiment`` picks the experiment's jobs first (with helpers), then reads those specs whole:
    the same victims, in the same order (states as asked, then names), and a malformed spec is left."""
    from expq.queue.removal import select

    monkeypatch.setattr(selection, "_BLOCK", 2)
    mine = add(queue, 6, "mine", priority=3) + add(queue, 2, "mine")
    theirs = add(queue, 5, "theirs")
    for spec in (mine[0], theirs[1]):
        assert queue.move(spec, State.PENDING, State.CANCELLED)
    path = queue.paths.pending_file(mine[2])
    path.write_text(path.read_text().replace('"retries":0', '"retries":-1'))  # of the experiment, not valid
    expected = [(State.PENDING, spec.id) for spec in mine[1:] if spec is not mine[2]] + [(State.CANCELLED, mine[0].id)]
    for helpers in (0, 1, 2):
        victims = select(queue, states=[State.PENDING, State.CANCELLED], experiment="mine", helpers=helpers)
        assert [(victim.state, victim.spec.id) for victim in victims] == expected
