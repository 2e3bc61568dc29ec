"""The state table and the moves that go through it."""
from __future__ import annotations

from pathlib import Path

import pytest

from expq.errors import InputError, InvalidTransition, NotFound
from expq.queue.ids import allocate_ids
from expq.queue.spec import JobSpec
from expq.queue.states import FINISHED, TRANSITIONS, State, check_transition
from expq.queue.store import JobQueue

ALLOWED = {
    (State.PENDING, State.RUNNING), (State.PENDING, State.CANCELLED),
    (State.RUNNING, State.DONE), (State.RUNNING, State.FAILED), (State.RUNNING, State.CANCELLED),
    (State.RUNNING, State.PENDING),
    (State.FAILED, State.PENDING), (State.CANCELLED, State.PENDING),
}


def test_states_are_the_five_design_values() -> None:
    assert [s.value for s in State] == ["pending", "running", "done", "failed", "cancelled"]
    assert State("done") is State.DONE and str(State.DONE) == "done"
    assert FINISHED == {State.DONE, State.FAILED, State.CANCELLED}


@pytest.mark.parametrize("source", list(State))
@pytest.mark.parametrize("target", list(State))
def test_table_allows_exactly_the_documented_transitions(source: State, target: State) -> None:
    assert (target in TRANSITIONS[source]) == ((source, target) in ALLOWED)
    if (source, target) in ALLOWED:
        check_transition(1, source, target)
    else:
        with pytest.raises(InvalidTransition) as info:
            check_transition(12, source, target)
        assert str(info.value) == f"job 12 cannot go from {source.value} to {target.value}"
        assert (info.value.current, info.value.target) == (source.value, target.value)


def _one_job(tmp_path: Path) -> tuple[JobQueue, JobSpec]:
    queue = JobQueue(tmp_path / "root").create()
    (job,) = allocate_ids(queue.paths, 1)
    spec = JobSpec(id=job, experiment="e", name="n", command=("true",), run_dir=f"experiments/e/{job}-n",
                   cwd="/", submitted_at=0.0, priority=5)
    queue.enqueue([spec])
    return queue, spec


def test_a_job_walks_through_its_life_by_renames(tmp_path: Path) -> None:
    queue, spec = _one_job(tmp_path)
    assert queue.state_of(spec.id) is State.PENDING
    assert queue.move(spec, State.PENDING, State.RUNNING)
    assert not queue.move(spec, State.PENDING, State.RUNNING)  # somebody else already moved it
    assert queue.move(spec, State.RUNNING, State.FAILED)
    assert queue.move(spec, State.FAILED, State.PENDING)
    assert queue.list_names(State.PENDING) == [queue.paths.file_name(State.PENDING, spec.id, 5)]
    assert queue.move(spec, State.PENDING, State.RUNNING) and queue.move(spec, State.RUNNING, State.DONE)
    assert queue.get(spec.id) == (State.DONE, spec)


def test_an_illegal_move_changes_nothing(tmp_path: Path) -> None:
    queue, spec = _one_job(tmp_path)
    assert queue.move(spec, State.PENDING, State.RUNNING) and queue.move(spec, State.RUNNING, State.DONE)
    with pytest.raises(InvalidTransition, match="job 1 cannot go from done to pending"):
        queue.move(spec, State.DONE, State.PENDING)
    assert queue.state_of(spec.id) is State.DONE


def test_a_job_whose_file_cannot_be_read_is_named_not_called_missing(tmp_path: Path) -> None:
    queue, spec = _one_job(tmp_path)
    assert queue.move(spec, State.PENDING, State.RUNNING) and queue.move(spec, State.RUNNING, State.DONE)
    # a file put by hand under the same id, in a state looked at first
    planted = queue.paths.state_dir(State.PENDING) / "cpu" / "0" / f"{spec.id:08d}.json"
    planted.parent.mkdir(parents=True, exist_ok=True)
    planted.write_text("not a spec")
    with pytest.raises(InputError, match=f"job 1: {planted} is not a job file expq can read") as caught:
        queue.get(spec.id)
    assert not isinstance(caught.value, NotFound)
    planted.unlink()
    assert queue.get(spec.id) == (State.DONE, spec)
