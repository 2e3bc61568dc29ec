"""Whatever lands in a queue folder is input: FIFOs, folders, symlinks, deep JSON and well-formed but
inconsistent specs are moved aside with a reason; ids are never reused; a submit is all or nothing;
every folder and control file of the root is checked."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from expq.errors import ExpqError, InsecureQueue
from expq.launcher import report
from expq.queue.claim import Claimer
from expq.queue.control import cancel
from expq.queue.ids import allocate_ids, last_id
from expq.queue.spec import JobSpec
from expq.queue.states import State
from expq.queue.store import JobQueue


@pytest.fixture
def queue(tmp_path: Path) -> JobQueue:
    return JobQueue(tmp_path / "root").create()


def _specs(queue: JobQueue, count: int) -> list[JobSpec]:
    return [JobSpec(job, "e", f"j{job}", ("true",), f"experiments/e/{job}-j{job}", "/", 0.0)
            for job in allocate_ids(queue.paths, count)]


def _claim_all(queue: JobQueue) -> list[int]:
    claimer = Claimer(queue, relist_interval=0)
    claimed = []
    while (got := claimer.claim(lambda spec: True, lambda slot: None)) is not None:
        claimed.append(got.spec.id)
    return claimed


def _reason(queue: JobQueue, name: str) -> str:
    return (queue.paths.rejected / name).with_suffix(".reason").read_text()


def test_files_that_are_not_small_regular_specs_are_moved_aside_and_nobody_hangs(queue: JobQueue):
    queue.enqueue(_specs(queue, 1))
    pending = queue.paths.state_dir(State.PENDING)
    os.mkfifo(pending / "00000-00000090.json")
    (pending / "00000-00000091.json").mkdir()
    (pending / "00000-00000092.json").symlink_to("/dev/zero")
    (pending / "00000-00000093.json").write_text("[" * 100_000 + "]" * 100_000)
    # status reads them too: in another process with a deadline, as a hang is the failure
    status = subprocess.run([sys.executable, "-m", "expq", "--root", str(queue.root), "status", "--json"],
                            capture_output=True, text=True, timeout=60)
    assert status.returncode == 0, status.stderr
    assert _claim_all(queue) == [1]
    assert "not a regular file" in _reason(queue, "00000-00000090.json")
    assert "not a regular file" in _reason(queue, "00000-00000091.json")
    assert "symbolic link" in _reason(queue, "00000-00000092.json")
    assert "nested too deeply" in _reason(queue, "00000-00000093.json")
    assert [p.name for p in pending.iterdir()] == ["cpu"]  # only the bucket of the real job is left


@pytest.mark.parametrize(("name", "change", "reason"), [
    ("00000-00000077.json", {"id": 2, "run_dir": "experiments/e/2-j77"}, "holds the spec of job 2, not of job 77"),
    ("00000-00000005.json", {"priority": 10**6}, "priority 1000000 outside"),
    ("09999-00000000.json", {"id": 0}, "id 0"),
    ("09999-00000006.json", {"after": [6]}, "names job 6 itself"),
    ("09999-00000007.json", {"run_dir": "../../outside"}, "run_dir '../../outside' is not"),
    ("09999-00000008.json", {"run_dir": "/etc"}, "run_dir '/etc' is not"),
    ("09999-00000009.json", {"env": {"EXPQ_ROOT": "/"}}, "EXPQ_ROOT is set by the worker"),
    ("09999-00000010.json", {"env": {"CUDA_VISIBLE_DEVICES": "0"}}, "CUDA_VISIBLE_DEVICES is set by the worker"),
    ("09999-00000011.json", {"priority": 5}, "does not match its spec"),
    ("09999-00000012.json", {"name": "../x"}, "invalid run name"),
])
def test_inconsistent_specs_are_refused_with_the_reason(queue: JobQueue, name: str, change: dict, reason: str):
    job_id = int(name[6:14])
    data = JobSpec(max(job_id, 1), "e", f"j{job_id}", ("true",), f"experiments/e/{job_id}-j{job_id}", "/", 0.0).to_dict()
    data.update(change)
    (queue.paths.state_dir(State.PENDING) / name).write_text(json.dumps(data))
    assert _claim_all(queue) == []
    assert reason in _reason(queue, name)


def test_a_dependency_on_an_id_never_handed_out_is_cancelled_not_waited_for(queue: JobQueue):
    (first,) = _specs(queue, 1)
    waiting = JobSpec(2, "e", "j2", ("true",), "experiments/e/2-j2", "/", 0.0, after=(999,))
    allocate_ids(queue.paths, 1)
    queue.enqueue([first, waiting])
    assert _claim_all(queue) == [1]
    assert queue.state_of(2) is State.CANCELLED
    result = json.loads(queue.paths.run(waiting.run_dir).result.read_text())
    assert result["reason"] == "dependency 999 does not exist"


def test_an_emptied_or_damaged_id_counter_never_hands_out_an_id_again(queue: JobQueue):
    queue.enqueue(_specs(queue, 3))
    queue.paths.id_counter.write_text("")
    assert list(allocate_ids(queue.paths, 2)) == [4, 5]
    queue.paths.id_counter.write_text("garbage")
    assert list(allocate_ids(queue.paths, 1)) == [4]  # 4 and 5 were never queued: no spec holds them
    queue.paths.id_counter.unlink()
    assert last_id(queue.paths) == 3
    queue.paths.id_counter.write_text("-5")
    with pytest.raises(ExpqError, match="negative"):
        allocate_ids(queue.paths, 1)
    assert queue.list_ids(State.PENDING) == [1, 2, 3]


def test_a_counter_behind_finished_jobs_is_rebuilt(queue: JobQueue):
    specs = _specs(queue, 3)
    queue.enqueue(specs)
    for spec in specs:
        assert queue.move(spec, State.PENDING, State.RUNNING) and queue.move(spec, State.RUNNING, State.DONE)
    queue.paths.id_counter.write_text("1")
    assert list(allocate_ids(queue.paths, 1)) == [4]


def test_a_submit_is_all_or_nothing_and_its_leftovers_are_removed(queue: JobQueue):
    specs = _specs(queue, 3)
    pending = queue.paths.state_dir(State.PENDING)
    (pending / queue.paths.file_name(State.PENDING, 3)).mkdir(parents=True)  # the third rename fails
    with pytest.raises(OSError):
        queue.enqueue(specs)
    assert [str(p.relative_to(pending)) for p in pending.rglob("*.json")] == [queue.paths.file_name(State.PENDING, 3)]
    assert not list(queue.paths.incoming.iterdir())
    # a submit that died left a batch: the next one removes it (its pid is gone)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    from expq.queue.workers import this_host  # noqa: PLC0415

    leftover = queue.paths.incoming / f"{this_host()}-{dead}-deadbeef"
    leftover.mkdir()
    (leftover / "00000009.json").write_text("{}")
    (pending / queue.paths.file_name(State.PENDING, 3)).rmdir()
    assert queue.enqueue(_specs(queue, 1)) == [4]
    assert not list(queue.paths.incoming.iterdir())


def test_cancel_of_thousands_of_ids_lists_the_queue_once(queue: JobQueue):
    specs = _specs(queue, 3000)
    queue.enqueue(specs)
    outcome = cancel(queue, [spec.id for spec in specs])
    assert set(outcome.values()) == {"cancelled"} and len(outcome) == 3000
    assert queue.counts()[State.CANCELLED] == 3000


@pytest.mark.parametrize("where", ["", "queue/leases", "queue/cancel", "queue/workers", "queue/rejected",
                                   "experiments", "queue/next_id"])
def test_every_folder_and_control_file_of_the_root_is_checked(queue: JobQueue, where: str):
    queue.paths.id_counter.write_text("0")
    target = queue.root / where
    target.chmod(0o666 if target.is_file() else 0o777)
    with pytest.raises(InsecureQueue, match="writable by other users"):
        queue.check_secure()


def test_a_queue_folder_that_became_a_file_is_refused_with_the_reason(queue: JobQueue):
    queue.paths.leases.rmdir()
    queue.paths.leases.write_text("")
    with pytest.raises(InsecureQueue, match="not a directory"):
        queue.check_secure()
    snapshot = report.collect(queue, report.Query(everything=True))
    assert snapshot.counts is not None
