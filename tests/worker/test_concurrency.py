"""Several real worker processes on one queue: each job exactly once; GPUs never shared."""
from __future__ import annotations

import contextlib
import os
import signal
import sys

MARK = """
import os, sys
marks = sys.argv[1]
# O_EXCL: a second run of the same job fails loudly instead of overwriting its marker
fd = os.open(os.path.join(marks, os.environ['EXPQ_JOB_ID']), os.O_WRONLY | os.O_CREAT | os.O_EXCL)
os.write(fd, os.environ['EXPQ_RUN_DIR'].encode())
"""

GPU_USER = """
import os, sys, time
gpus = os.environ['CUDA_VISIBLE_DEVICES'].split(',')
busy = [os.path.join(sys.argv[1], 'gpu-' + g) for g in gpus]
for path in busy:  # fails (and fails the job) if another job holds this GPU right now
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL))
time.sleep(0.3)
for path in busy:
    os.unlink(path)
with open(os.path.join(sys.argv[1], 'log'), 'a') as log:
    log.write(','.join(gpus) + chr(10))
"""


def test_four_workers_run_every_job_exactly_once(cluster):
    marks = cluster.tmp / "marks"
    marks.mkdir()
    script = cluster.tmp / "mark.py"
    script.write_text(MARK)
    ids = cluster.submit("--sweep", "i=range(80)", "--", sys.executable, str(script), str(marks))
    workers = [cluster.worker("--gpus", "none", "--slots", "2", "--drain") for _ in range(4)]
    assert [w.wait(120) for w in workers] == [0, 0, 0, 0]
    assert sorted(int(p.name) for p in marks.iterdir()) == ids
    assert all(cluster.state(i) == "done" for i in ids)
    assert sum(1 for i in range(4) if "exits after 0 job" not in cluster.worker_log(i)) >= 2


def test_two_workers_never_hand_one_gpu_to_two_jobs(cluster):
    marks = cluster.tmp / "gpu-marks"
    marks.mkdir()
    script = cluster.tmp / "gpu.py"
    script.write_text(GPU_USER)
    one = cluster.submit("--gpus", "1", "--sweep", "i=range(8)", "--", sys.executable, str(script), str(marks))
    two = cluster.submit("--gpus", "2", "--sweep", "i=range(3)", "--", sys.executable, str(script), str(marks))
    workers = [cluster.worker("--gpus", "0,1,2", "--drain") for _ in range(2)]
    assert [w.wait(120) for w in workers] == [0, 0]
    assert all(cluster.state(i) == "done" for i in one + two), [cluster.job(i) for i in one + two]
    used = (marks / "log").read_text().split()
    assert len(used) == 11 and sum(1 for u in used if "," in u) == 3
    assert all(set(u.split(",")) <= {"0", "1", "2"} for u in used)
    assert {tuple(cluster.job(i)["gpus"]) for i in two} <= {("0", "1"), ("0", "2"), ("1", "2")}


def test_job_needing_more_gpus_than_any_worker_stays_pending(cluster, capsys):
    job_id = cluster.submit("--gpus", "2", "--", "true")[0]
    small = cluster.submit("--gpus", "1", "--", "true")[0]
    worker = cluster.worker("--gpus", "7")
    cluster.wait_state(small, "done")
    assert cluster.state(job_id) == "pending"
    capsys.readouterr()
    assert cluster.cli("status") == 0
    assert "needs 2 GPUs" in capsys.readouterr().out
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0
    cluster.drain("--gpus", "7")  # --drain does not wait for a job it can never run
    assert cluster.state(job_id) == "pending"


def test_workers_of_two_hosts_recover_each_others_jobs_by_heartbeat(cluster, wait_until):
    started = cluster.tmp / "started"
    script = (f"import os, time\nif os.environ['EXPQ_ATTEMPT'] == '1':\n"
              f"    open('{started}', 'w').write(str(os.getpid())); time.sleep(600)\n")
    job_id = cluster.submit("--retries", "1", "--", sys.executable, "-c", script)[0]
    host_a = cluster.worker("--gpus", "none", env={"EXPQ_HOST": "host-a"})
    wait_until(started.exists, timeout=20)
    host_a.send_signal(signal.SIGSTOP)  # a hung host: its pid looks alive, only its heartbeat stops
    try:
        host_b = cluster.worker("--gpus", "none", "--lease-timeout", "1", env={"EXPQ_HOST": "host-b"})
        cluster.wait_state(job_id, "done")
        host_b.send_signal(signal.SIGTERM)
        assert host_b.wait(20) == 0
    finally:
        host_a.send_signal(signal.SIGKILL)
        # Another host cannot reach host A's processes, so its first attempt sleeps on: end it here.
        with contextlib.suppress(ValueError, ProcessLookupError):
            os.kill(int(started.read_text()), signal.SIGKILL)
    job = cluster.job(job_id)
    assert job["attempts"] == 2 and job["host"] == "host-b"
    assert "stopped sending heartbeats" in cluster.worker_log(1)
