"""report: one record per job from the files the queue and the worker write, absent or torn ones included."""
from __future__ import annotations

import dataclasses
import json
import os
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from expq.errors import NotFound
from expq.launcher import report
from expq.queue.attempts import Attempt, Outcome, finish_attempt
from expq.queue.ids import allocate_ids
from expq.queue.lease import Lease, write_lease
from expq.queue.spec import JobSpec
from expq.queue.states import State
from expq.queue.store import JobQueue

NOW = 1_800_000_000.0


@pytest.fixture
def queue(tmp_path: Path) -> JobQueue:
    return JobQueue(tmp_path / "root").create()


def add(queue: JobQueue, count: int = 1, **fields: Any) -> list[JobSpec]:
    experiment = fields.get("experiment", "exp")
    specs = [JobSpec(**{"id": job, "experiment": "exp", "name": f"run{job}", "command": ("python", "t.py", str(job)),
                        "run_dir": f"experiments/{experiment}/{job}-run{job}", "cwd": "/work",
                        "submitted_at": NOW - 100, **fields})
             for job in allocate_ids(queue.paths, count)]
    queue.enqueue(specs)
    return specs


def attempt(number: int = 1, **changes: object) -> Attempt:
    fields = dict(number=number, host="gpu-box", worker_id="w1", started_at=NOW - 65, gpus=("2", "3"), slurm_job="77")
    fields.update(changes)
    return Attempt(**fields)  # type: ignore[arg-type]


def lease(job: int, record: Attempt) -> Lease:
    """A lease held by this process; fields beyond the four every version has get their zero value."""
    extra = {f.name: "" if f.type == "str" else 0 for f in dataclasses.fields(Lease)
             if f.default is dataclasses.MISSING and f.name not in ("job_id", "attempt", "pid", "pid_started")}
    return Lease(job_id=job, attempt=record, pid=os.getpid(), pid_started=0.0, **extra)  # type: ignore[arg-type]


def start(queue: JobQueue, spec: JobSpec, number: int = 1) -> None:
    assert queue.move(spec, State.PENDING, State.RUNNING)
    write_lease(queue.paths, lease(spec.id, attempt(number)))


def finish(queue: JobQueue, spec: JobSpec, state: State, result: dict[str, object] | None) -> None:
    if queue.state_of(spec.id) is State.PENDING:
        start(queue, spec)
    run = queue.paths.run(spec.run_dir)
    outcome = Outcome.DONE if state is State.DONE else Outcome.FAILED
    finish_attempt(run, attempt(), outcome=outcome, finished_at=NOW - 5, exit_code=0 if outcome is Outcome.DONE else 3)
    if result is not None:
        run.result.write_text(json.dumps(result))
    queue.paths.lease_file(spec.id).unlink()
    assert queue.move(spec, State.RUNNING, state)


RESULT = {"version": 1, "job_id": 0, "state": "failed", "reason": "exit code 3", "exit_code": 3, "signal": None,
          "attempts": 2, "host": "node7", "worker_id": "w9", "slurm_job": "", "gpus": ["0"], "started_at": NOW - 50,
          "finished_at": NOW - 20, "duration": 30.0, "peak_rss_bytes": 1024}


def by_id(snapshot: report.Snapshot) -> dict[int, dict[str, object]]:
    return {rec["id"]: rec for rec in snapshot.jobs}


def test_records_of_every_state(queue: JobQueue) -> None:
    pending, running, failed, torn, bare = add(queue, 5, gpus=1)
    start(queue, running)
    finish(queue, failed, State.FAILED, RESULT)
    finish(queue, torn, State.DONE, None)
    queue.paths.run(torn.run_dir).result.write_text('{"state": "do')  # a half-written result: ignored
    assert queue.move(bare, State.PENDING, State.CANCELLED)  # cancelled before it ever ran: no files at all
    snap = report.collect(queue, report.Query(), now=NOW)
    assert snap.counts == {"pending": 1, "running": 1, "done": 1, "failed": 1, "cancelled": 1}
    jobs = by_id(snap)
    assert list(jobs) == [3, 4, 5, 2, 1]  # finished by id, then running, then pending
    assert jobs[1]["state"] == "pending" and jobs[1]["attempts"] == 0 and jobs[1]["gpus"] == []
    assert jobs[1]["gpus_requested"] == 1 and jobs[1]["reason"] == "no live worker" and jobs[1]["queue_position"] == 1
    run = jobs[2]
    assert (run["state"], run["host"], run["gpus"], run["attempts"], run["started_at"], run["elapsed"],
            run["slurm_job"]) == ("running", "gpu-box", ["2", "3"], 1, NOW - 65, 65.0, "77")
    fail = jobs[3]
    assert (fail["exit_code"], fail["reason"], fail["attempts"], fail["host"], fail["gpus"], fail["duration"],
            fail["elapsed"], fail["finished_at"]) == (3, "exit code 3", 2, "node7", ["0"], 30.0, 30.0, NOW - 20)
    assert jobs[4]["exit_code"] == 0 and jobs[4]["host"] == "gpu-box" and jobs[4]["duration"] == 60.0
    assert jobs[4]["reason"] == "result.json is not valid JSON"  # torn: the attempt record fills in, and it is said
    assert all(jobs[j]["queue_position"] is None for j in (2, 3, 4, 5))
    assert jobs[5]["state"] == "cancelled" and jobs[5]["exit_code"] is None and jobs[5]["host"] is None
    assert fail["run_dir"] == str(queue.root / failed.run_dir)
    assert fail["command"] == ["python", "t.py", "3"] and fail["config"] == {} and fail["after"] == []
    json.dumps(snap.jobs)  # the records are the --json output


def test_a_result_with_foreign_types_is_ignored_field_by_field(queue: JobQueue) -> None:
    (spec,) = add(queue)
    finish(queue, spec, State.DONE, {**RESULT, "duration": "long", "exit_code": True, "gpus": "0", "host": 3})
    rec = report.collect(queue, report.Query(), now=NOW).jobs[0]
    assert (rec["duration"], rec["exit_code"], rec["gpus"], rec["host"], rec["attempts"]) == (30.0, None, [], None, 2)


def test_a_requeued_pending_job_shows_its_attempts(queue: JobQueue) -> None:
    (spec,) = add(queue)
    finish_attempt(queue.paths.run(spec.run_dir), attempt(1), outcome=Outcome.PREEMPTED)
    assert by_id(report.collect(queue, report.Query(), now=NOW))[1]["attempts"] == 1


def write_worker(queue: JobQueue, name: str, gpus: int, host: str | None = None, pid: int | None = None,
                 age: float = 0.0) -> None:
    path = queue.paths.worker_file(name)
    path.write_text(json.dumps({"gpus": [str(g) for g in range(gpus)], "slots": max(gpus, 1),
                                "host": host or socket.gethostname(), "pid": pid or os.getpid()}))
    if age:
        os.utime(path, (time.time() - age, time.time() - age))


def test_pending_reasons(queue: JobQueue) -> None:
    first, waits, small, big, orphan = add(queue, 5)
    for spec, changes in ((waits, {"after": (1,)}), (small, {"gpus": 2}), (big, {"gpus": 4}),
                          (orphan, {"after": (1,)})):
        changed = JobSpec.from_dict({**spec.to_dict(), **changes})
        queue.paths.pending_file(spec).unlink()
        queue.paths.pending_file(changed).parent.mkdir(parents=True, exist_ok=True)
        queue.paths.pending_file(changed).write_bytes(changed.to_json())
    reasons = lambda: {r["id"]: r["reason"] for r in report.collect(queue, report.Query()).jobs}  # noqa: E731
    assert reasons() == {1: "no live worker", 2: "after 1", 3: "no live worker", 4: "no live worker",
                         5: "after 1"}
    write_worker(queue, "w-here", 2)
    assert reasons() == {1: "", 2: "after 1", 3: "", 4: "needs 4 GPUs (largest worker has 2)", 5: "after 1"}
    write_worker(queue, "w-far-stale", 8, host="elsewhere", pid=1, age=3600)  # silent for an hour: gone
    write_worker(queue, "w-here-dead", 8, pid=_dead_pid())
    assert reasons()[4] == "needs 4 GPUs (largest worker has 2)"
    write_worker(queue, "w-far", 4, host="elsewhere", pid=1)
    assert reasons()[4] == ""
    finish(queue, first, State.FAILED, RESULT)
    assert reasons()[2] == "after 1, which did not succeed"


def _dead_pid() -> int:
    import subprocess

    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


def test_default_view_shows_active_jobs_and_the_last_finished(queue: JobQueue,
                                                              wait_until: Callable[..., object]) -> None:
    specs = add(queue, 120)
    early, late = specs[2:40], specs[:2]
    for spec in early:
        finish(queue, spec, State.DONE, None)
    mark = time.time()
    wait_until(lambda: time.time() > mark + 0.05, message="the clock did not advance")
    for spec in late:  # finished last, though their ids are the smallest
        finish(queue, spec, State.FAILED, None)
    start(queue, specs[50])
    snap = report.collect(queue, report.Query())
    shown = [rec["id"] for rec in snap.jobs]
    finished = [rec["id"] for rec in snap.jobs if rec["state"] in ("done", "failed")]
    assert len(finished) == report.RECENT_FINISHED and {1, 2} <= set(finished)
    assert 51 in shown
    pending = [rec["id"] for rec in snap.jobs if rec["state"] == "pending"]
    assert pending == [i for i in range(41, 41 + report.PENDING_SHOWN + 1) if i != 51]
    assert snap.hidden == 120 - len(shown) and shown == sorted(finished) + [51] + pending


def test_filters(queue: JobQueue) -> None:
    add(queue, 3)
    other = add(queue, 3, experiment="other")
    finish(queue, other[0], State.DONE, None)
    ids = lambda **q: [r["id"] for r in report.collect(queue, report.Query(**q)).jobs]  # noqa: E731
    assert ids(experiment="other") == [4, 5, 6]
    assert ids(states=("done",)) == [4]
    assert ids(states=("pending", "done"), experiment="exp") == [1, 2, 3]
    assert ids(ids=(6, 2, 6)) == [2, 6]
    assert ids(ids=(4, 5), states=("pending",)) == [5]
    assert ids(everything=True) == [4, 1, 2, 3, 5, 6]
    with pytest.raises(NotFound, match="^no such job: 9$"):
        report.collect(queue, report.Query(ids=(1, 9)))


def test_a_malformed_spec_is_counted_but_not_listed(queue: JobQueue) -> None:
    add(queue, 2)
    queue.paths.job_file(State.DONE, 7).write_text("{torn")
    snap = report.collect(queue, report.Query(everything=True))
    assert snap.counts["done"] == 1 and [r["id"] for r in snap.jobs] == [1, 2]


def test_a_job_that_moved_after_the_listing_is_read_where_it_is_now(queue: JobQueue) -> None:
    (spec,) = add(queue)
    name = queue.paths.file_name(State.PENDING, spec.id)
    assert queue.move(spec, State.PENDING, State.CANCELLED)
    assert report._read_spec(queue, State.PENDING, name) == (State.CANCELLED, spec)


def test_show_collects_everything_about_one_job(queue: JobQueue) -> None:
    (spec,) = add(queue, config={"lr": 0.1})
    finish(queue, spec, State.FAILED, RESULT)
    details = report.show(queue, 1)
    run = queue.root / spec.run_dir
    assert details["job"]["state"] == "failed" and details["spec"] == spec.to_dict()
    assert details["paths"]["stdout"] == str(run / "stdout.log") and details["paths"]["run_dir"] == str(run)
    assert [a["outcome"] for a in details["attempts"]] == ["failed"]
    assert details["result"] == RESULT
    with pytest.raises(NotFound):
        report.show(queue, 2)


def test_waiting_names_the_ended_jobs_and_how(queue: JobQueue) -> None:
    a, b, c = add(queue, 3)
    finish(queue, a, State.DONE, None)
    finish(queue, b, State.FAILED, None)
    assert report.waiting(queue, [1, 2, 3]).ended == {1: State.DONE, 2: State.FAILED}
