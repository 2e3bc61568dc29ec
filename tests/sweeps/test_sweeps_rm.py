"""``expq rm`` and ``expq gc``: out of the queue by rename first, then the files; running jobs refused."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from expq.queue.removal import trash_dir
from expq.queue.states import State

FILES = "import os, sys; d = os.environ['EXPQ_RUN_DIR']; [open(os.path.join(d, 'f%d' % i), 'w').close() for i in range(int(sys.argv[1]))]"


def _run_dir(root, job: int) -> Path:
    return root.path / root.queue.get(job)[1].run_dir


def _everywhere(root) -> dict[int, State]:
    return {job: state for state in State for job in root.queue.list_ids(state)}


def test_rm_during_a_worker_run_removes_finished_jobs_and_refuses_the_running_one(root, tmp_path):
    finished = root.submit("--experiment", "old", "--sweep", "x=1,2,3", "--", sys.executable, "-c", FILES, "5")
    root.drain()
    gate = tmp_path / "gate"
    waiter = f"import os, time\nwhile not os.path.exists({str(gate)!r}): time.sleep(0.01)"
    (running,) = root.submit("--experiment", "new", "--", sys.executable, "-c", waiter)
    root.worker()
    root.wait_state(running, "running")
    refused = root.expq("rm", str(running))
    assert refused.returncode == 2
    assert refused.stderr == f"expq: error: cannot remove job {running}: it is running (cancel it first: expq cancel)\n"
    dirs = [_run_dir(root, job) for job in finished]
    done = root.expq("rm", "--experiment", "old")
    assert done.returncode == 0, done.stderr
    assert [int(x) for x in done.stdout.split()] == finished
    assert not any(path.exists() for path in dirs)
    assert set(_everywhere(root)) == {running}
    gate.touch()
    root.wait_state(running, "done")
    assert os.listdir(trash_dir(root.queue)) == []


def test_rm_filters_dry_run_and_keep_files(root):
    ok = root.submit("--experiment", "a", "--sweep", "x=1,2", "--", "true", "{x}")
    (bad,) = root.submit("--experiment", "a", "--", "false")
    (pending,) = root.submit("--experiment", "b", "--after", str(bad), "--", "true")
    root.drain()
    assert root.state(pending) == "cancelled"  # its dependency failed
    preview = root.expq("rm", "--state", "failed", "--dry-run")
    assert preview.stdout == f"would remove {bad} (failed) {_run_dir(root, bad)}\n"
    assert root.state(bad) == "failed"
    assert root.expq("rm", "--state", "done", "--older-than", "1d").stdout == ""  # all ended just now
    kept = root.expq("rm", "--state", "failed", "--state", "cancelled", "--keep-files")
    assert sorted(int(x) for x in kept.stdout.split()) == [bad, pending]
    assert _everywhere(root) == {job: State.DONE for job in ok}
    bad_dir = root.path / "experiments" / "a" / f"{bad}-false"
    assert (bad_dir / "result.json").exists()  # kept; now owned by no job
    assert root.expq("gc", "--dry-run").stdout == ""  # changed moments ago: a submit may be preparing it
    os.utime(bad_dir, (0, 0))
    assert root.expq("gc", "--dry-run").stdout == f"would remove {bad_dir}\n"
    assert root.expq("gc").stdout == f"{bad_dir}\n"
    assert not bad_dir.exists() and _run_dir(root, ok[0]).exists()


def test_gc_never_touches_runs_started_by_hand(root):
    import expq

    root.submit("--", "true")
    with expq.Experiment("hand", root=root.path, sources=False, capture_output=False) as exp:
        by_hand = exp.path
    os.utime(by_hand, (0, 0))
    assert root.expq("gc", "--dry-run").stdout == ""
    root.expq("gc", check=True)
    assert by_hand.exists()


@pytest.mark.parametrize(("args", "message"), [
    (["9"], "no such job: 9"),
    ([], "nothing to remove: give job ids or filters"),
    (["1", "--state", "done"], "give either job ids or filters"),
    (["--state", "running"], "'running' is not a state jobs can be removed from"),
    (["--older-than", "7x"], "'7x' is not a duration"),
    (["1"], "cannot remove job 1: pending job 2 waits for it"),
])
def test_bad_rm_removes_nothing(root, args, message):
    root.submit("--", "true")
    root.submit("--after", "1", "--", "true")
    done = root.expq("rm", *args)
    assert done.returncode == 2 and message in done.stderr
    assert set(_everywhere(root)) == {1, 2}


def test_sigkill_of_rm_halfway_leaves_a_consistent_queue(root, wait_until):
    ids = root.submit("--experiment", "big", "--sweep", "x=range(12)", "--", sys.executable, "-c", FILES, "3000")
    root.drain("--slots", "2")
    dirs = {job: _run_dir(root, job) for job in ids}
    trash = trash_dir(root.queue)
    proc = subprocess.Popen([sys.executable, "-m", "expq", "--root", str(root.path), "rm", "--experiment", "big"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_until(lambda: trash.is_dir() and any(n.endswith(".json") for n in os.listdir(trash)) or proc.poll() is not None,
               timeout=60, interval=0.001)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    left = _everywhere(root)
    for job in ids:  # each job is either fully in the queue, or out of it (its files maybe still in removed/)
        if job in left:
            assert left[job] is State.DONE and len(os.listdir(dirs[job])) >= 3000
    status = root.expq("status", "--all", check=True)
    assert f"done {len(left)}" in status.stdout
    root.expq("gc", check=True)  # finishes what the killed rm left
    assert os.listdir(trash) == []
    for job in ids:
        assert dirs[job].exists() == (job in left)
    root.expq("rm", "--experiment", "big", check=True)
    assert _everywhere(root) == {} and not any(path.exists() for path in dirs.values())


def test_gc_removes_files_of_workers_that_are_gone(root):
    root.submit("--", "true")
    workers = root.path / "queue" / "workers"
    stop = root.path / "queue" / "stop"
    stop.mkdir(mode=0o700)
    (stop / "ghost-1-abc").touch()  # a stop request whose worker died before reading it
    old, recent = workers / "ghost-1-abc.log", workers / "ghost-2-def.log"
    old.write_text("old\n")
    recent.write_text("recent\n")
    os.utime(old, (0, 0))
    preview = root.expq("gc", "--dry-run", check=True).stdout
    assert preview == f"would remove {stop / 'ghost-1-abc'}\nwould remove {old}\n"
    root.expq("gc", check=True)
    assert not (stop / "ghost-1-abc").exists() and not old.exists() and recent.exists()
