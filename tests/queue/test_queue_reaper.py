"""The reaper's verdicts as a pure function of leases, hosts and an injected clock; then recovery."""
from __future__ import annotations

import json
import os
import time

from expq.queue.attempts import Attempt, Outcome, read_attempts
from expq.queue.lease import HeartbeatWatch, Lease, lease_is_mine, write_lease
from expq.queue.reaper import RunningJob, Verdict, judge, recover
from expq.queue.spec import JobSpec
from expq.queue.states import State
from expq.queue.store import JobQueue


def _lease(job_id: int, worker: str, host: str, pid: int = 100, claim: str = "") -> Lease:
    return Lease(job_id, Attempt(1, host, worker, 1000.0), pid, 5.0, claim)


def _judge(jobs, *, alive=(), stale=(), now=1000.0, grace=60.0):
    return [v.job_id for v in judge(jobs, "here", now, "me", lambda pid, started: pid in alive,
                                    lambda worker: worker in stale, grace)]


def test_a_job_without_lease_is_orphaned_only_after_the_grace_period():
    jobs = [RunningJob(1, None, running_since=950.0), RunningJob(2, None, running_since=930.0)]
    assert _judge(jobs, now=1000.0, grace=60.0) == [2]


def test_same_host_is_judged_by_pid_and_heartbeat_other_hosts_by_heartbeat():
    jobs = [RunningJob(1, _lease(1, "w1", "here", pid=10), 0), RunningJob(2, _lease(2, "w2", "here", pid=20), 0),
            RunningJob(3, _lease(3, "w3", "there"), 0), RunningJob(4, _lease(4, "w4", "there"), 0),
            RunningJob(5, _lease(5, "me", "here", pid=999), 0), RunningJob(6, _lease(6, "w6", "here", pid=11), 0)]
    # job 5 is this worker's own; job 6's worker lives (pid 11) but is frozen: its heartbeat stands still
    assert _judge(jobs, alive={10, 11}, stale={"w4", "w6"}) == [2, 4, 6]


def test_heartbeat_watch_needs_the_mtime_to_stand_still_for_the_timeout(tmp_path):
    queue = JobQueue(tmp_path).create()
    beat = queue.paths.worker_file("w")
    beat.write_text("{}")
    os.utime(beat, (1, 1))
    watch = HeartbeatWatch(timeout=10)
    # The file's own time (1970) is irrelevant: only movement, by the watcher's clock, counts.
    assert not watch.is_stale(queue.paths, "w", now=500.0)
    assert not watch.is_stale(queue.paths, "w", now=509.0)
    os.utime(beat, (2, 2))
    assert not watch.is_stale(queue.paths, "w", now=515.0)
    assert not watch.is_stale(queue.paths, "w", now=524.0)
    assert watch.is_stale(queue.paths, "w", now=525.0)


def _running_job(queue: JobQueue, retries: int, claim: str = "") -> JobSpec:
    spec = JobSpec(7, "e", "n", ("true",), "experiments/e/7-n", "/", time.time(), retries=retries)
    queue.enqueue([spec])
    assert queue.move(spec, State.PENDING, State.RUNNING, claim=claim)
    return spec


def test_recover_requeues_while_retries_last_then_fails(tmp_path):
    queue = JobQueue(tmp_path).create()
    spec = _running_job(queue, retries=1)
    lease = _lease(7, "dead", "here")
    write_lease(queue.paths, lease)
    assert recover(queue, Verdict(7, lease, "worker dead died")) is State.PENDING
    assert [a.outcome for a in read_attempts(queue.paths.run(spec.run_dir))] == [Outcome.LOST]
    assert not queue.paths.lease_file(7).exists()
    assert queue.move(spec, State.PENDING, State.RUNNING)
    second = Lease(7, Attempt(2, "here", "dead2", 1001.0), 100, 5.0)
    write_lease(queue.paths, second)
    assert recover(queue, Verdict(7, second, "worker dead2 died")) is State.FAILED
    result = json.loads(queue.paths.run(spec.run_dir).result.read_text())
    assert result["state"] == "failed" and result["reason"] == "worker dead2 died; no retries left"
    assert recover(queue, Verdict(7, second, "again")) is None  # already recovered: nothing to do


def test_recover_finalises_a_job_whose_result_was_written(tmp_path):
    queue = JobQueue(tmp_path).create()
    spec = _running_job(queue, retries=3)
    run = queue.paths.run(spec.run_dir)
    run.dir.mkdir(parents=True)
    run.result.write_text(json.dumps({"job_id": 7, "state": "done", "attempts": 1}))
    write_lease(queue.paths, _lease(7, "dead", "here"))
    assert recover(queue, Verdict(7, _lease(7, "dead", "here"), "died")) is State.DONE
    assert read_attempts(run) == []


def test_a_lease_is_mine_until_someone_replaces_or_removes_it(tmp_path):
    queue = JobQueue(tmp_path).create()
    stamp = write_lease(queue.paths, _lease(3, "me", "here"))
    assert lease_is_mine(queue.paths, 3, stamp)
    queue.paths.lease_file(3).unlink()
    assert not lease_is_mine(queue.paths, 3, stamp)
    write_lease(queue.paths, _lease(3, "other", "here"))
    assert not lease_is_mine(queue.paths, 3, stamp)


def test_an_earlier_attempts_result_does_not_end_a_job_claimed_again(tmp_path):
    queue = JobQueue(tmp_path).create()
    spec = _running_job(queue, retries=0)
    run = queue.paths.run(spec.run_dir)
    run.dir.mkdir(parents=True)
    run.result.write_text(json.dumps({"state": "failed", "attempts": 1}))  # before `expq retry`
    # claimed again by a worker that died before writing its lease: run it again
    assert recover(queue, Verdict(7, None, "its worker died while starting it")) is State.PENDING


def _recording(killed: list[int]):
    """A kill that notes the attempt it was asked to end and reports it gone."""
    def kill(spec, lease) -> bool:
        killed.append(lease.attempt.number)
        return True
    return kill


def _lost_claim(queue: JobQueue, claim: str) -> tuple[JobSpec, Verdict]:
    """Job 7 running under ``claim``, its worker dead: the claim and the verdict on it."""
    spec = _running_job(queue, retries=5, claim=claim)
    lost = _lease(7, "dead", "here", claim=claim)
    write_lease(queue.paths, lost)
    return spec, Verdict(7, lost, "worker dead died", claim)


def test_two_reapers_with_one_verdict_recover_the_claim_once_and_never_a_later_claim(tmp_path):
    queue = JobQueue(tmp_path).create()
    spec, verdict = _lost_claim(queue, "aaaa0001")
    killed = []
    assert recover(queue, verdict, kill=_recording(killed)) is State.PENDING
    # a live worker claims the job again and writes its own lease
    assert queue.move(spec, State.PENDING, State.RUNNING, claim="bbbb0002")
    fresh = Lease(7, Attempt(2, "here", "alive", 1002.0), 200, 6.0, "bbbb0002")
    stamp = write_lease(queue.paths, fresh)
    # the second reaper acts on the same, now stale, verdict: nothing of the new claim is touched
    assert recover(queue, verdict, kill=_recording(killed)) is None
    assert killed == [1]
    assert queue.paths.job_file(State.RUNNING, 7, claim="bbbb0002").exists()
    assert lease_is_mine(queue.paths, 7, stamp, claim="bbbb0002")
    assert [a.outcome for a in read_attempts(queue.paths.run(spec.run_dir))] == [Outcome.LOST]


def test_a_claim_without_lease_is_requeued_once(tmp_path):
    queue = JobQueue(tmp_path).create()
    spec = _running_job(queue, retries=0, claim="cccc0003")
    verdict = Verdict(7, None, "its worker died while starting it", "cccc0003")
    assert recover(queue, verdict) is State.PENDING
    assert queue.move(spec, State.PENDING, State.RUNNING, claim="dddd0004")
    assert recover(queue, verdict) is None
    assert queue.paths.job_file(State.RUNNING, 7, claim="dddd0004").exists()


def test_a_lost_attempt_still_dying_is_not_requeued_and_its_lease_stays_for_the_next_try(tmp_path):
    queue = JobQueue(tmp_path).create()
    spec, verdict = _lost_claim(queue, "eeee0005")
    assert recover(queue, verdict, kill=lambda s, lease: False) is None
    assert queue.paths.lease_file(7, "eeee0005").exists()
    assert queue.paths.job_file(State.RUNNING, 7, claim="eeee0005").exists()
    assert read_attempts(queue.paths.run(spec.run_dir)) == []
    assert recover(queue, verdict, kill=lambda s, lease: True) is State.PENDING
