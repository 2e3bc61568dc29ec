"""Real workers on the format-2 queue: a dependency's end promotes its dependents exactly once among
racing workers, a format-1 root is upgraded by the worker that opens it, and a root of a newer format
is refused with the reason."""
from __future__ import annotations

from expq.queue.attempts import read_attempts
from expq.queue.paths import FORMAT_VERSION
from expq.queue.spec import MAX_PRIORITY
from expq.queue.states import State

DEPENDENTS = 120


def test_a_dependency_that_ends_promotes_each_dependent_exactly_once_under_four_racing_workers(cluster, wait_until):
    (first,) = cluster.submit("--", "sleep", "0.5")
    marks = cluster.tmp / "marks"
    marks.mkdir()
    cluster.submit("--after", str(first), "--sweep", f"i=range({DEPENDENTS})", "--",
                   "sh", "-c", f'set -C; : > "{marks}/$EXPQ_JOB_ID"')
    for _ in range(4):
        cluster.worker("--gpus", "none", "--slots", "2")
    queue = cluster.queue
    wait_until(lambda: queue.counts()[State.DONE] == DEPENDENTS + 1, timeout=120, message=lambda: f"{queue.counts()}")
    assert len(list(marks.iterdir())) == DEPENDENTS  # a second run of a job would have failed its marker
    assert queue.counts()[State.FAILED] == 0
    for job_id in queue.list_ids(State.DONE):
        assert [a.outcome.value for a in read_attempts(queue.paths.run(queue.get(job_id)[1].run_dir))] == ["done"]
    assert not queue.paths.dependents_of(first).exists()


def test_a_format_1_root_is_upgraded_by_the_worker_that_opens_it(cluster, wait_until):
    (done_first,) = cluster.submit("--", "true")
    queue = cluster.queue
    # rewrite the queue as format 1 left it: flat pending names, no format file
    spec = queue.get(done_first)[1]
    queue.paths.pending_file(spec).unlink()
    queue.paths.format_file.unlink()
    flat = queue.paths.state_dir(State.PENDING) / f"{MAX_PRIORITY - spec.priority:05d}-{spec.id:08d}.json"
    flat.write_bytes(spec.to_json())
    cluster.drain("--gpus", "none")
    assert queue.state_of(done_first) is State.DONE
    assert queue.paths.format_file.read_text() == f"{FORMAT_VERSION}\n"


def test_a_worker_refuses_a_root_of_a_newer_format_with_the_reason(cluster):
    cluster.submit("--", "true")
    cluster.queue.paths.format_file.write_text(f"{FORMAT_VERSION + 1}\n")
    proc = cluster.worker("--drain", "--gpus", "none")
    assert proc.wait(60) != 0
    log = cluster.worker_log(0)
    assert f"uses queue format {FORMAT_VERSION + 1}, newer than this expq knows ({FORMAT_VERSION})" in log
    assert cluster.queue.counts()[State.PENDING] == 1



def test_entries_put_by_hand_in_the_queue_folders_never_stop_a_worker(cluster):
    # found by planting odd entries: a folder among a dependency's index entries made every worker on
    # the queue exit at its next relist, and a folder named as a cancel request failed a job's record
    (first,) = cluster.submit("--", "true")
    (second,) = cluster.submit("--after", str(first), "--", "true")
    paths = cluster.queue.paths
    (paths.dependents_of(first) / "sub").mkdir()
    (paths.dependents_of(first) / "notes").write_text("")
    (paths.dependents / "junk").mkdir()
    paths.cancel_file(first).mkdir(parents=True)  # never a request: the job runs and its end is recorded
    cluster.drain("--gpus", "none")
    assert (cluster.state(first), cluster.state(second)) == ("done", "done")
    assert "could not record" not in cluster.worker_log(0)
