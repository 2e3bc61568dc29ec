"""Format 2 of the queue: pending jobs grouped by what they need, jobs waiting for dependencies apart
and promoted by whoever ends the dependency, the format recorded and older roots upgraded in place."""
from __future__ import annotations

import json
import multiprocessing
import os
import signal
import time
from pathlib import Path

import pytest

from expq.queue.claim import Claimer
from expq.queue.dependents import promote_dependents
from expq.queue.ids import allocate_ids
from expq.queue.layout import NewerFormat
from expq.queue.paths import AFTER, FORMAT_VERSION
from expq.queue.spec import MAX_PRIORITY, JobSpec
from expq.queue.states import State
from expq.queue.store import JobQueue


def _spec(job: int, **fields: object) -> JobSpec:
    return JobSpec(**{"id": job, "experiment": "e", "name": f"j{job}", "command": ("true",),  # type: ignore[arg-type]
                      "run_dir": f"experiments/e/{job}-j{job}", "cwd": "/", "submitted_at": 0.0, **fields})


def _submit(queue: JobQueue, count: int = 1, **fields: object) -> list[JobSpec]:
    specs = [_spec(job, **fields) for job in allocate_ids(queue.paths, count)]
    queue.enqueue(specs)
    return specs


def _claim_all(claimer: Claimer) -> list[int]:
    claimed = []
    while (got := claimer.claim(lambda spec: "slot", lambda slot: None)) is not None:
        claimed.append(got.spec.id)
    return claimed


def test_pending_jobs_are_grouped_by_what_they_need(tmp_path: Path):
    queue = JobQueue(tmp_path).create()
    _submit(queue, 1)
    _submit(queue, 1, gpus=2)
    _submit(queue, 1, gpus=1, gpu_mem=6 << 30)
    pending = queue.paths.state_dir(State.PENDING)
    assert sorted(str(p.relative_to(pending)) for p in pending.rglob("*.json")) == [
        "cpu/09999/00000001.json", "gpu1-m6144/09999/00000003.json", "gpu2/09999/00000002.json"]
    assert queue.paths.format_file.read_text() == f"{FORMAT_VERSION}\n"
    assert queue.list_ids(State.PENDING) == [1, 2, 3]
    assert {job: where[0] for job, where in queue.locate_many([1, 2, 3]).items()} == dict.fromkeys([1, 2, 3],
                                                                                                   State.PENDING)


def test_a_cpu_worker_never_reads_gpu_jobs_and_a_gpu_worker_takes_both(tmp_path: Path):
    queue = JobQueue(tmp_path).create()
    (cpu,) = _submit(queue, 1)
    (gpu,) = _submit(queue, 1, gpus=1)
    # a GPU job's file that any reader would move aside: the CPU worker must never open it
    bad = queue.paths.state_dir(State.PENDING) / "gpu1" / "09999" / "00000077.json"
    bad.write_text("not json")
    assert _claim_all(Claimer(queue, relist_interval=0, serves=lambda bucket: bucket == "cpu")) == [cpu.id]
    assert bad.exists() and not list(queue.paths.rejected.iterdir())
    assert _claim_all(Claimer(queue, relist_interval=0, serves=lambda bucket: bucket in ("cpu", "gpu1"))) == [gpu.id]
    assert not bad.exists() and (queue.paths.rejected / "00000077.json").exists()


def test_the_schedule_spans_buckets_by_priority_then_id(tmp_path: Path):
    queue = JobQueue(tmp_path).create()
    _submit(queue, 2, gpus=1)
    _submit(queue, 1, priority=5)
    _submit(queue, 1)
    assert _claim_all(Claimer(queue, relist_interval=0)) == [3, 1, 2, 4]


def test_a_blocked_bucket_costs_one_look_per_claim_however_many_jobs_wait(tmp_path: Path):
    queue = JobQueue(tmp_path).create()
    _submit(queue, 500, gpus=1)
    (cpu,) = _submit(queue, 1)
    asked: list[int] = []

    def reserve(spec: JobSpec) -> str | None:
        asked.append(spec.id)
        return None if spec.gpus else "slot"

    got = Claimer(queue, relist_interval=0).claim(reserve, lambda slot: None)
    assert got is not None and got.spec.id == cpu.id
    assert asked == [1, cpu.id]


def test_a_claimer_lists_again_only_when_the_change_signal_moves(tmp_path: Path):
    queue = JobQueue(tmp_path).create()
    claimer = Claimer(queue)
    _submit(queue, 1)
    assert _claim_all(claimer) == [1]
    # a job placed without the signal stays unseen until the signal moves (or the safety relist)
    hidden = _spec(*allocate_ids(queue.paths, 1))
    path = queue.paths.pending_file(hidden)
    path.write_bytes(hidden.to_json())
    assert _claim_all(claimer) == []
    _submit(queue, 1)
    assert _claim_all(claimer) == [2, 3]


def test_dependents_wait_apart_and_are_promoted_when_the_dependency_ends(tmp_path: Path):
    queue = JobQueue(tmp_path).create()
    (first,) = _submit(queue, 1)
    waiting = _submit(queue, 3, after=(first.id,))
    assert all(queue.paths.pending_file(spec, waiting=True).exists() for spec in waiting)
    assert sorted(os.listdir(queue.paths.dependents_of(first.id))) == ["00000002", "00000003", "00000004"]
    claimer = Claimer(queue)
    got = claimer.claim(lambda spec: "slot", lambda slot: None)
    assert got is not None and got.spec.id == first.id
    assert _claim_all(claimer) == []
    assert queue.list_ids(State.PENDING) == [2, 3, 4]  # still pending to the user, with its reason
    assert queue.move(first, State.RUNNING, State.DONE, claim=got.token)
    assert not queue.paths.dependents_of(first.id).exists()
    assert _claim_all(claimer) == [2, 3, 4]


def test_a_failed_dependency_cancels_its_dependents_and_theirs(tmp_path: Path):
    queue = JobQueue(tmp_path).create()
    (first,) = _submit(queue, 1)
    (second,) = _submit(queue, 1, after=(first.id,))
    (third,) = _submit(queue, 1, after=(second.id,))
    assert queue.move(first, State.PENDING, State.RUNNING) and queue.move(first, State.RUNNING, State.FAILED)
    assert queue.state_of(second.id) is State.CANCELLED and queue.state_of(third.id) is State.CANCELLED
    result = json.loads(queue.paths.run(third.run_dir).result.read_text())
    assert result["reason"] == f"dependency {second.id} cancelled"


def _promote(root: str, dep: int) -> None:
    promote_dependents(JobQueue(root), dep)


def test_a_promoter_killed_halfway_leaves_work_that_the_next_relist_finishes(tmp_path: Path):
    queue = JobQueue(tmp_path).create()
    (first,) = _submit(queue, 1)
    waiting = _submit(queue, 3000, after=(first.id,))
    assert queue.move(first, State.PENDING, State.RUNNING)
    assert queue.move(first, State.RUNNING, State.DONE, cascade=False)  # as if its finisher died right here
    bucket = queue.paths.pending_file(waiting[0]).parent
    promoter = multiprocessing.get_context("spawn").Process(target=_promote, args=(str(queue.root), first.id))
    promoter.start()
    deadline = time.monotonic() + 60
    while not (bucket.is_dir() and len(os.listdir(bucket)) > 100) and time.monotonic() < deadline:
        time.sleep(0.005)
    os.kill(promoter.pid, signal.SIGKILL)
    promoter.join()
    assert 100 < len(os.listdir(bucket)) < 3000  # killed halfway
    claimed = _claim_all(Claimer(queue))
    assert sorted(claimed) == [spec.id for spec in waiting]
    assert not queue.paths.dependents_of(first.id).exists()


def test_a_format_1_root_is_upgraded_in_place(tmp_path: Path):
    queue = JobQueue(tmp_path).create()
    queue.paths.format_file.unlink()
    pending = queue.paths.state_dir(State.PENDING)
    specs = [_spec(1), _spec(2, gpus=1, priority=3), _spec(3, after=(1,))]
    for spec in specs:  # the format-1 layout: flat, inverted priority first
        (pending / f"{MAX_PRIORITY - spec.priority:05d}-{spec.id:08d}.json").write_bytes(spec.to_json())
    queue.paths.id_counter.write_text("3")
    upgraded = JobQueue(tmp_path).require()
    assert upgraded.paths.format_file.read_text() == f"{FORMAT_VERSION}\n"
    assert sorted(str(p.relative_to(pending)) for p in pending.rglob("*.json")) == [
        f"{AFTER}/09999/00000003.json", "cpu/09999/00000001.json", "gpu1/09996/00000002.json"]
    assert os.listdir(upgraded.paths.dependents_of(1)) == ["00000003"]
    assert _claim_all(Claimer(upgraded)) == [2, 1]


def test_a_root_of_a_newer_format_is_refused_with_the_reason(tmp_path: Path):
    queue = JobQueue(tmp_path).create()
    queue.paths.format_file.write_text(f"{FORMAT_VERSION + 1}\n")
    with pytest.raises(NewerFormat, match=f"uses queue format {FORMAT_VERSION + 1}, newer than this expq knows"):
        JobQueue(tmp_path).require()


def test_a_spec_planted_in_the_wrong_bucket_is_moved_aside_with_the_reason(tmp_path: Path):
    queue = JobQueue(tmp_path).create()
    (job,) = _submit(queue, 1)
    wrong = queue.paths.state_dir(State.PENDING) / "gpu1" / "09999" / f"{job.id:08d}.json"
    wrong.parent.mkdir(parents=True)
    queue.paths.pending_file(job).rename(wrong)
    assert _claim_all(Claimer(queue, relist_interval=0)) == []
    assert "does not match its spec" in (queue.paths.rejected / f"{job.id:08d}.reason").read_text()
