"""Timeouts, cancel, SIGTERM and SIGKILL of workers: whole process trees die, nothing is lost."""
from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import psutil

from expq.queue.attempts import read_attempts
from expq.queue.paths import RunPaths, claim_of
from expq.queue.states import State

# A job that starts a grandchild in its own session (escaping the process group), records both pids,
# then waits; the grandchild ignores SIGTERM, so only a SIGKILL after the grace period ends it.
TREE = """
import os, subprocess, sys, time
grandchild = subprocess.Popen([sys.executable, '-c',
    'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)'],
    start_new_session=True)
open(sys.argv[1] + '.tmp', 'w').write('%d %d' % (os.getpid(), grandchild.pid))
os.rename(sys.argv[1] + '.tmp', sys.argv[1])
time.sleep(600)
"""


def _pids(path: Path) -> list[int]:
    return [int(p) for p in path.read_text().split()]


def _all_dead(pids: list[int]) -> bool:
    def dead(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True
    return all(dead(pid) for pid in pids)


def test_timeout_kills_the_whole_tree_and_fails_the_job(cluster, wait_until):
    pids = cluster.tmp / "pids"
    job_id = cluster.submit("--timeout", "1", "--", sys.executable, "-c", TREE, str(pids))[0]
    cluster.drain("--gpus", "none", "--grace", "0.5")
    assert cluster.state(job_id) == "failed"
    result = cluster.result(job_id)
    assert result["reason"] == "timeout after 1 s" and result["outcome"] == "timeout"
    wait_until(lambda: _all_dead(_pids(pids)), timeout=10, message="job tree still alive after timeout")


def test_cancel_of_a_running_job_kills_grandchildren(cluster, wait_until):
    pids = cluster.tmp / "pids"
    job_id = cluster.submit("--", sys.executable, "-c", TREE, str(pids))[0]
    worker = cluster.worker("--gpus", "none", "--grace", "0.5")
    wait_until(pids.exists, timeout=20, message="job never started")
    assert cluster.cli("cancel", str(job_id)) == 0
    wait_until(lambda: cluster.state(job_id) == "cancelled", timeout=20)
    assert _all_dead(_pids(pids))
    assert cluster.result(job_id)["reason"] == "cancelled by user"
    assert worker.poll() is None  # the worker goes on serving
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0


def test_cancels_reach_a_busy_worker_between_heartbeats_even_back_to_back(cluster, wait_until):
    """The worker looks at cancel requests when their folder changes; two requests within one
    timestamp tick must both be seen, long before the heartbeat's look at every job."""
    jobs = cluster.submit("--sweep", "i=range(6)", "--", "sleep", "60")
    worker = cluster.worker("--gpus", "none", "--slots", "6", "--heartbeat", "30", "--lease-timeout", "120")
    wait_until(lambda: all(cluster.state(job) == "running" for job in jobs), timeout=30)
    assert cluster.cli("cancel", str(jobs[0])) == 0 and cluster.cli("cancel", str(jobs[1])) == 0
    wait_until(lambda: [cluster.state(job) for job in jobs[:2]] == ["cancelled"] * 2, timeout=15)
    assert cluster.cli("cancel", str(jobs[2])) == 0
    wait_until(lambda: cluster.state(jobs[2]) == "cancelled", timeout=15)
    assert [cluster.state(job) for job in jobs[3:]] == ["running"] * 3
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0


def test_sigterm_requeues_running_jobs_without_spending_a_retry(cluster, wait_until):
    started = cluster.tmp / "started"
    script = f"import os, time; open('{started}', 'a').write(os.environ['EXPQ_ATTEMPT']); " \
             "time.sleep(0 if os.environ['EXPQ_ATTEMPT'] == '2' else 600)"
    job_id = cluster.submit("--", sys.executable, "-c", script)[0]
    worker = cluster.worker("--gpus", "none")
    wait_until(started.exists, timeout=20, message="job never started")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0
    assert cluster.state(job_id) == "pending"
    attempt = json.loads((cluster.run_dir(job_id) / "attempts" / "1.json").read_text())
    assert attempt["outcome"] == "preempted"
    cluster.drain("--gpus", "none")  # retries=0, yet it runs again: preemption spends no retry
    assert cluster.state(job_id) == "done" and started.read_text() == "12"


def test_sigkilled_worker_loses_no_job(cluster, wait_until):
    pids = cluster.tmp / "pids"
    script = f"import os, subprocess, sys, time\n" \
             f"if os.environ['EXPQ_ATTEMPT'] == '1':\n" \
             f"    open('{pids}.tmp', 'w').write(str(os.getpid())); os.rename('{pids}.tmp', '{pids}'); time.sleep(600)\n"
    job_id = cluster.submit("--retries", "1", "--", sys.executable, "-c", script)[0]
    victim = cluster.worker("--gpus", "none")
    wait_until(pids.exists, timeout=20, message="job never started")
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    orphan = _pids(pids)
    assert cluster.state(job_id) == "running"
    cluster.drain("--gpus", "none")  # same host: the dead pid is seen at once
    assert cluster.state(job_id) == "done"
    assert [a.outcome.value for a in read_attempts(RunPaths(cluster.run_dir(job_id)))] == ["lost", "done"]
    assert not (cluster.run_dir(job_id) / "attempts" / "2.json").exists()  # the last one is in result.json
    assert _all_dead(orphan), "the dead worker's child must be killed before the job runs again"


def test_sigkilled_worker_without_retries_fails_the_job_with_the_reason(cluster, wait_until):
    started = cluster.tmp / "started"
    job_id = cluster.submit("--", "sh", "-c", f"touch {started}; sleep 600")[0]
    victim = cluster.worker("--gpus", "none")
    wait_until(started.exists, timeout=20)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    cluster.drain("--gpus", "none")
    assert cluster.state(job_id) == "failed"
    assert "died; no retries left" in cluster.result(job_id)["reason"]


def test_worker_that_died_after_writing_the_result_is_finalised_not_rerun(cluster, wait_until):
    count = cluster.tmp / "count"
    job_id = cluster.submit("--", "sh", "-c", f"echo run >> {count}")[0]
    cluster.drain("--gpus", "none")
    assert count.read_text() == "run\n"
    # Put the finished job back in running/ with a lease of a dead worker, as a SIGKILL between
    # writing result.json and the final rename leaves it.
    queue = cluster.queue
    done = queue.paths.job_file(State.DONE, job_id)
    os.rename(done, queue.paths.job_file(State.RUNNING, job_id, claim="0badc1a1"))
    dead = psutil.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    attempt = read_attempts(RunPaths(cluster.run_dir(job_id)))[-1].to_dict()
    attempt["outcome"] = "running"
    lease = {"job_id": job_id, "pid": dead.pid, "pid_started": 1.0, "claim": "0badc1a1", "attempt": attempt}
    queue.paths.lease_file(job_id, "0badc1a1").write_text(json.dumps(lease))
    cluster.drain("--gpus", "none")
    assert cluster.state(job_id) == "done" and count.read_text() == "run\n"


def test_stalled_worker_whose_job_was_taken_kills_its_child(cluster, wait_until):
    pids = cluster.tmp / "pids"
    job_id = cluster.submit("--", sys.executable, "-c", TREE, str(pids))[0]
    stalled = cluster.worker("--gpus", "none", "--grace", "0.5", "--max-jobs", "1")
    wait_until(pids.exists, timeout=20)
    stalled.send_signal(signal.SIGSTOP)
    # Meanwhile another host's worker decided the stalled one was dead and requeued the job.
    queue = cluster.queue
    spec = queue.get(job_id)[1]
    (running,) = queue.list_names(State.RUNNING)
    assert queue.move(spec, State.RUNNING, State.PENDING, claim=claim_of(running))
    queue.paths.lease_file(job_id, claim_of(running)).unlink()
    stalled.send_signal(signal.SIGCONT)
    assert stalled.wait(20) == 0  # --max-jobs 1: it exits once its (taken) job is dropped
    assert _all_dead(_pids(pids)), "the fenced worker left its child running"
    assert cluster.state(job_id) == "pending"
    assert not (cluster.run_dir(job_id) / "result.json").exists()
    assert "was taken from this worker" in cluster.worker_log(0)


def test_job_claimed_by_a_worker_that_died_before_its_lease_is_recovered(cluster):
    job_id = cluster.submit("--", "true")[0]
    queue = cluster.queue
    spec = queue.get(job_id)[1]
    assert queue.move(spec, State.PENDING, State.RUNNING, claim="0badc1a1")  # claimed, no lease
    worker = cluster.worker("--gpus", "none", "--lease-timeout", "0.5")  # waits out the grace, then recovers
    cluster.wait_state(job_id, "done")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0
    assert cluster.result(job_id)["attempts"] == 1 and "died while starting it" in cluster.worker_log(0)
