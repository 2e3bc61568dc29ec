"""``status`` tells the truth: counts follow the filters, pending jobs come in the order they will be
tried, and a job whose run files are broken is listed with the condition instead of failing the command."""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from expq.launcher import report
from expq.launcher.cli import main
from expq.queue.lease import write_lease
from expq.queue.states import State
from expq.queue.store import JobQueue

sys.path.insert(0, str(Path(__file__).parent))
from test_report import NOW, RESULT, add, attempt, finish, lease, start, write_worker  # noqa: E402

ZERO = {"pending": 0, "running": 0, "done": 0, "failed": 0, "cancelled": 0}


@pytest.fixture
def queue(tmp_path: Path) -> JobQueue:
    return JobQueue(tmp_path / "root").create()


def cli(capsys: pytest.CaptureFixture[str], queue: JobQueue, *argv: str) -> tuple[int, str, str]:
    code = main(["--root", str(queue.root), *argv])
    out, err = capsys.readouterr()
    return code, out, err


# -- counts follow the filters ------------------------------------------------------------------

def test_counts_are_of_the_matching_jobs(queue: JobQueue) -> None:
    mine = add(queue, 3, experiment="mine")
    add(queue, 4, experiment="other")
    finish(queue, mine[0], State.DONE, None)
    start(queue, mine[1])
    whole = {**ZERO, "pending": 5, "running": 1, "done": 1}

    snap = report.collect(queue, report.Query(experiment="mine"))
    assert snap.counts == {**ZERO, "pending": 1, "running": 1, "done": 1}
    assert snap.queue_counts == whole and snap.filtered and snap.hidden == 0
    assert report.collect(queue, report.Query(experiment="nope")).counts == ZERO
    assert report.collect(queue, report.Query(states=("pending",))).counts == {**ZERO, "pending": 5}
    assert report.collect(queue, report.Query(states=("pending",), experiment="mine")).counts == {**ZERO, "pending": 1}
    assert report.collect(queue, report.Query(ids=(1, 4))).counts == {**ZERO, "pending": 1, "done": 1}
    unfiltered = report.collect(queue, report.Query())
    assert unfiltered.counts == unfiltered.queue_counts == whole and not unfiltered.filtered


def test_counts_line_of_a_filtered_status(queue: JobQueue, capsys: pytest.CaptureFixture[str]) -> None:
    mine = add(queue, 2, experiment="mine")
    add(queue, 3, experiment="other")
    finish(queue, mine[0], State.FAILED, RESULT)
    code, out, _ = cli(capsys, queue, "status", "--experiment", "mine")
    assert code == 0
    assert out.splitlines()[0] == "pending 1  running 0  done 0  failed 1  cancelled 0  (2 matching of 5 jobs)"
    code, out, _ = cli(capsys, queue, "status", "--json", "--experiment", "mine")
    assert json.loads(out)["counts"] == {**ZERO, "pending": 1, "failed": 1}
    code, out, _ = cli(capsys, queue, "status")
    assert out.splitlines()[0] == "pending 4  running 0  done 0  failed 1  cancelled 0  (total 5)"


def test_an_experiments_default_view_is_bounded_like_the_queues(queue: JobQueue) -> None:
    add(queue, report.PENDING_SHOWN + 7, experiment="big")
    snap = report.collect(queue, report.Query(experiment="big"))
    assert len(snap.jobs) == report.PENDING_SHOWN and snap.hidden == 7
    assert snap.counts["pending"] == report.PENDING_SHOWN + 7


def test_counting_an_experiment_survives_hostile_queue_files(queue: JobQueue) -> None:
    add(queue, 2, experiment="mine")
    pending = queue.paths.state_dir(State.PENDING) / "cpu" / "09999"
    os.mkfifo(pending / "00000007.json")  # nobody will ever write to it: must not be waited on
    (pending / "00000008.json").symlink_to("/dev/zero")
    (pending / "00000009.json").write_text("[" * 100_000)
    (pending / "00000010.json").write_text('{"experiment": "mine"}')  # claims the experiment: counted
    snap = report.collect(queue, report.Query(experiment="mine"))
    assert snap.counts["pending"] == 3 and [j["id"] for j in snap.jobs] == [1, 2]


# -- schedule order -------------------------------------------------------------------------------

def test_pending_jobs_come_in_the_order_they_will_run(queue: JobQueue, capsys: pytest.CaptureFixture[str]) -> None:
    for priority in (0, 5, 0, 5, -3, 9):
        add(queue, priority=priority)
    finish(queue, queue.get(4)[1], State.DONE, None)
    jobs = report.collect(queue, report.Query()).jobs
    assert [(j["id"], j["queue_position"]) for j in jobs] == [(4, None), (6, 1), (2, 2), (1, 3), (3, 4), (5, 5)]
    code, out, _ = cli(capsys, queue, "status", "--json", "--state", "pending")
    assert [j["id"] for j in json.loads(out)["jobs"]] == [6, 2, 1, 3, 5]
    code, out, _ = cli(capsys, queue, "status", "--all")
    assert [line.split()[0] for line in out.splitlines()[3:]] == ["4", "6", "2", "1", "3", "5"]
    assert report.show(queue, 3)["job"]["queue_position"] == 4


# -- broken run files: the job is listed, with the condition as its reason ------------------------

def broken_queue(queue: JobQueue) -> None:
    """Job 1: run dir is a file. 2: result.json is a directory. 3: result.json is a FIFO. 4: result.json
    nested too deep. 5: result.json is a symlink to /dev/zero. 6: running, with leases/ a file. 7: pending."""
    specs = add(queue, 7)
    for spec in specs[:5]:
        finish(queue, spec, State.FAILED, None)
    run = [queue.paths.run(spec.run_dir) for spec in specs]
    for path in run[0].dir.iterdir():
        if path.is_dir():
            for inner in path.iterdir():
                inner.unlink()
            path.rmdir()
        else:
            path.unlink()
    run[0].dir.rmdir()
    run[0].dir.write_text("not a directory")
    run[1].result.mkdir()
    os.mkfifo(run[2].result)
    run[3].result.write_text("[" * 100_000 + "]" * 100_000)
    run[4].result.symlink_to("/dev/zero")
    start(queue, specs[5])
    leases = queue.paths.lease_file(6).parent
    for path in leases.iterdir():
        path.unlink()
    leases.rmdir()
    leases.write_text("")


REASONS = {1: "run directory is not a directory", 2: "result.json is a directory",
           3: "result.json is not a regular file", 4: "result.json is not valid JSON",
           5: "result.json is a symbolic link", 6: "the leases folder is not a directory", 7: "no live worker"}


def test_broken_run_files_are_reasons_not_failures(queue: JobQueue, capsys: pytest.CaptureFixture[str]) -> None:
    broken_queue(queue)
    jobs = report.collect(queue, report.Query(everything=True)).jobs
    reasons = {j["id"]: j["reason"] for j in jobs}
    assert reasons == REASONS
    assert next(j for j in jobs if j["id"] == 2)["attempts"] == 1  # the attempt record still fills in

    code, out, err = cli(capsys, queue, "status")
    assert (code, err) == (0, "") and "run directory is not a directory" in out
    code, out, err = cli(capsys, queue, "status", "--json")
    assert (code, err) == (0, "")
    assert {j["id"]: j["reason"] for j in json.loads(out)["jobs"]} == reasons
    for job in range(1, 8):
        code, out, err = cli(capsys, queue, "show", str(job))
        assert (code, err) == (0, "") and f"  id: {job}\n" in out
        code, out, err = cli(capsys, queue, "show", "--json", str(job))
        assert code == 0 and json.loads(out)["job"]["reason"] == reasons[job]


def test_a_workers_folder_that_is_a_file(queue: JobQueue) -> None:
    add(queue)
    queue.paths.workers.rmdir()
    queue.paths.workers.write_text("")
    assert report.collect(queue, report.Query()).jobs[0]["reason"] == "cannot read the workers folder (Not a directory)"


def test_stray_files_in_state_folders_are_not_jobs(queue: JobQueue, capsys: pytest.CaptureFixture[str]) -> None:
    add(queue, 2)
    (queue.paths.state_dir(State.DONE) / "notes.json").write_text("{}")
    (queue.paths.state_dir(State.PENDING) / "09999-00000009.json").mkdir()
    code, out, err = cli(capsys, queue, "status", "--all")
    assert (code, err) == (0, "") and [line.split()[0] for line in out.splitlines()[3:]] == ["1", "2"]
    assert report.waiting(queue, [1, 2]).ended == {}


# -- why submit --wait waits ------------------------------------------------------------------------

def test_waiting_gives_the_reason_of_the_next_job(queue: JobQueue) -> None:
    first, second, third = add(queue, 3, gpus=2)
    assert report.waiting(queue, [1, 2, 3]) == report.Waiting(running=0, pending=3, reason="no live worker")
    write_worker(queue, "w1", 1)
    assert report.waiting(queue, [2, 3]).reason == "needs 2 GPUs (largest worker has 1)"
    write_worker(queue, "w2", 4)
    start(queue, first)
    assert report.waiting(queue, [1, 2, 3]) == report.Waiting(running=1, pending=2, reason="")
    finish(queue, first, State.DONE, None)
    finish(queue, second, State.FAILED, None)
    assert report.waiting(queue, [1, 2, 3], now=NOW) == report.Waiting(
        running=0, pending=1, reason="", ended={1: State.DONE, 2: State.FAILED})
    queue.paths.pending_file(third).unlink()  # removed from the queue (what `expq rm` does)
    assert report.waiting(queue, [1, 2, 3]).gone == (3,)


def test_show_of_a_retried_job_keeps_its_old_result_apart(queue: JobQueue,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    (spec,) = add(queue)
    finish(queue, spec, State.FAILED, RESULT)
    assert report.show(queue, 1)["result"] == RESULT
    code, out, _ = cli(capsys, queue, "retry", "1")
    assert code == 0
    details = report.show(queue, 1)
    assert details["job"]["state"] == "pending" and details["result"] is None
    assert details["earlier_result"] == RESULT
    code, out, _ = cli(capsys, queue, "show", "1")
    assert code == 0 and "\nresult: null\n" in out and "\nearlier_result:\n  version: 1\n" in out


def test_a_running_job_without_a_lease_says_so(queue: JobQueue) -> None:
    """A worker that died between claiming a job and starting it leaves it in running/ without a lease
    until a reaper recovers it; status must not show it as an ordinary running job."""
    (spec,) = add(queue)
    assert queue.move(spec, State.PENDING, State.RUNNING)
    (rec,) = report.collect(queue, report.Query()).jobs
    assert (rec["state"], rec["reason"]) == ("running",
                                             "no lease: being started, or its worker died while starting it")
    write_lease(queue.paths, lease(1, attempt()))
    assert report.collect(queue, report.Query()).jobs[0]["reason"] == ""


def test_the_table_names_a_program_by_its_name_not_its_path(tmp_path, capsys):
    from expq.launcher.cli import main

    root = tmp_path / "root"
    assert main(["--root", str(root), "submit", "--", "/usr/bin/env", "python3", "-m", "expq.executor", "mod.fn"]) == 0
    capsys.readouterr()
    assert main(["--root", str(root), "status"]) == 0
    table = capsys.readouterr().out
    assert "env python3 -m expq.executor mod.fn" in table and "/usr/bin/env" not in table
