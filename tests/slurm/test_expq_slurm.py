"""``expq slurm`` against a real SLURM cluster (ci/slurm-ci.sh: one node, 4 fake GPUs, KillWait 5 s).

Workers are started with ``expq slurm start`` exactly as a user would, on a root whose path has a
space in it (the script must quote it). Timing facts of this cluster are in test_cluster.py: the
``--signal`` warning of a ``--time=1`` job arrives 0-30 s after its start.
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest

pytestmark = pytest.mark.slurm

# A job that runs to the end only from its second attempt on: the first one is there to be preempted.
PREEMPTIBLE = 'echo "attempt $EXPQ_ATTEMPT"; if [ "$EXPQ_ATTEMPT" = 1 ]; then exec sleep 300; fi; echo finished'


class Expq:
    """Runs ``python -m expq --root ROOT ...`` and remembers the SLURM jobs it started."""

    def __init__(self, root: Path, wait_until: Callable[..., Any]) -> None:
        self.root = root
        self.wait_until = wait_until
        self.arrays: list[str] = []
        self.local_workers: list[subprocess.Popen[bytes]] = []

    def __call__(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([sys.executable, "-m", "expq", "--root", str(self.root), *args], capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL,
                              env={**os.environ, "COLUMNS": "200"})  # wide enough for every status column
        assert not check or done.returncode == 0, f"expq {' '.join(args)}: {done.returncode} {done.stderr}"
        return done

    def submit(self, *args: str) -> list[int]:
        return [int(line) for line in self("submit", *args).stdout.split()]

    def start(self, *args: str) -> str:
        array = self("slurm", "start", *args).stdout.strip()
        assert array.isdigit(), array
        self.arrays.append(array)
        return array

    def jobs(self) -> dict[int, dict[str, Any]]:
        return {job["id"]: job for job in json.loads(self("status", "--json").stdout)["jobs"]}

    def wait_state(self, job: int, state: str, timeout: float) -> dict[str, Any]:
        return self.wait_until(lambda: self.jobs()[job] if self.jobs()[job]["state"] == state else None,
                               timeout=timeout, interval=0.2,
                               message=lambda: f"job {job} is {self.jobs()[job]['state']}, wanted {state}")

    def attempts(self, job: int) -> list[dict[str, Any]]:
        run_dir = Path(self.jobs()[job]["run_dir"])
        return [json.loads((run_dir / "attempts" / f"{n}.json").read_text())
                for n in range(1, len(list((run_dir / "attempts").glob("*.json"))) + 1)]

    def stdout_log(self, job: int) -> str:
        return (Path(self.jobs()[job]["run_dir"]) / "stdout.log").read_text()

    def worker_log(self, array: str, task: int = 0) -> str:
        return (self.root / "slurm" / "logs" / f"{array}_{task}.out").read_text()

    def local_worker(self, *args: str) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen([sys.executable, "-m", "expq", "--root", str(self.root), "worker", *args],
                                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.local_workers.append(proc)
        return proc


@pytest.fixture
def expq(slurm, tmp_path: Path, wait_until) -> Expq:
    helper = Expq(tmp_path / "expq root", wait_until)
    yield helper
    for proc in helper.local_workers:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    left = [a for a in helper.arrays if slurm.squeue_ids(a)]
    if left:
        subprocess.run(["scancel", "--signal=KILL", *left], capture_output=True, timeout=30)
        for array in left:
            slurm.wait_gone(array, timeout=30)


def _task_state(slurm, array: str, task: int) -> str:
    return slurm.state(f"{array}_{task}")


def test_array_workers_run_each_job_once_on_their_gpus(expq: Expq, slurm) -> None:
    jobs = expq.submit("--gpus", "1", "--sweep", "i=range(6)", "--", "bash", "-c",
                       'echo "gpu=$CUDA_VISIBLE_DEVICES alloc=$SLURM_JOB_GPUS'
                       ' array=$SLURM_ARRAY_JOB_ID task=$SLURM_ARRAY_TASK_ID"; sleep 0.5')
    t0 = time.monotonic()
    array = expq.start("--workers", "2", "--gpus-per-worker", "1")
    slurm.wait_gone(array, timeout=60)  # --drain: each worker exits once nothing is left
    print(f"6 jobs on 2 SLURM workers: {time.monotonic() - t0:.1f} s from submit to both workers gone")
    assert [_task_state(slurm, array, t) for t in (0, 1)] == ["COMPLETED", "COMPLETED"]
    records = expq.jobs()
    for job in jobs:
        rec = records[job]
        assert (rec["state"], rec["attempts"]) == ("done", 1), rec
        log = expq.stdout_log(job)
        assert "=== expq job" not in log, log  # ran once: only a retry puts a header in stdout.log
        printed = dict(re.findall(r"(\w+)=(\S*)", log.splitlines()[0]))
        assert rec["slurm_job"] == f"{printed['array']}_{printed['task']}", (rec, printed)
        assert printed["array"] == array
        assert rec["gpus"] == [printed["gpu"]]
        assert printed["gpu"] in printed["alloc"].split(","), f"job {job} ran on a GPU SLURM did not give its worker"
        assert rec["host"]
    scripts = list((expq.root / "slurm").glob("workers-*.sbatch"))
    assert len(scripts) == 1 and "#SBATCH --gres=gpu:1" in scripts[0].read_text()
    table = expq("status").stdout
    assert "SLURM" in table.splitlines()[2] and f"{array}_" in table


def test_stop_requeues_the_running_job_and_another_worker_finishes_it(expq: Expq, slurm) -> None:
    [job] = expq.submit("--retries", "0", "--", "bash", "-c", PREEMPTIBLE)
    array = expq.start("--workers", "1")
    running = expq.wait_state(job, "running", timeout=30)
    assert running["slurm_job"] == f"{array}_0"
    # `exec`: the worker itself is the batch step's main process, child of slurmstepd
    [worker] = [json.loads(p.read_text()) for p in (expq.root / "queue" / "workers").glob("*.json")]
    assert psutil.Process(worker["pid"]).parent().name() == "slurmstepd"
    [row] = json.loads(expq("slurm", "list", "--json").stdout)["workers"]
    assert (row["slurm_job"], row["state"], row["worker_id"], row["jobs"]) == (
        f"{array}_0", "RUNNING", worker["worker_id"], [job])

    assert expq("slurm", "stop").stdout == f"{array}_0 signalled (SIGTERM: re-queue jobs, exit)\n"
    slurm.wait_gone(array, timeout=30)
    assert _task_state(slurm, array, 0) == "COMPLETED"  # the worker exited 0 on its own
    pending = expq.jobs()[job]
    assert (pending["state"], pending["attempts"]) == ("pending", 1)  # --retries 0, yet not failed
    [first] = expq.attempts(job)
    assert (first["outcome"], first["slurm_job"]) == ("preempted", f"{array}_0")
    assert first["reason"] == "worker stopped by SIGTERM; requeued"

    local = expq.local_worker("--gpus", "none", "--drain")
    assert local.wait(timeout=30) == 0, local.stderr.read() if local.stderr else ""
    done = expq.jobs()[job]
    assert (done["state"], done["attempts"], done["slurm_job"]) == ("done", 2, None)
    log = expq.stdout_log(job)
    assert log.startswith("attempt 1\n") and log.count("=== expq job") == 1, log
    assert log.endswith("attempt 2\nfinished\n"), log


def test_plain_scancel_requeues_every_running_job(expq: Expq, slurm) -> None:
    """scancel signals every process of the job step at once, jobs included: they must still come
    back as preempted, not failed (the worker's SIGTERM can arrive after its children died of theirs)."""
    jobs = expq.submit("--retries", "0", "--sweep", "i=range(4)", "--", "sleep", "300")
    array = expq.start("--workers", "1", "--slots-per-worker", "4")
    for job in jobs:
        expq.wait_state(job, "running", timeout=30)
    slurm.cancel(array)
    slurm.wait_gone(array, timeout=30)
    assert _task_state(slurm, array, 0) == "CANCELLED"
    records = expq.jobs()
    assert [records[job]["state"] for job in jobs] == ["pending"] * 4
    assert [a["outcome"] for job in jobs for a in expq.attempts(job)] == ["preempted"] * 4


def test_time_limit_warning_requeues_and_worker_exits_cleanly(expq: Expq, slurm) -> None:
    """--signal=B:USR1@60 with --time=1: the warning comes at slurmctld's first check, 0-30 s in."""
    [job] = expq.submit("--", "bash", "-c", PREEMPTIBLE)
    array = expq.start("--workers", "1", "--time", "1", "--signal-lead", "60")
    expq.wait_state(job, "running", timeout=30)
    t0 = time.monotonic()
    slurm.wait_gone(array, timeout=45)
    print(f"time-limit warning handled {time.monotonic() - t0:.1f} s after the job started")
    assert _task_state(slurm, array, 0) == "COMPLETED"  # not TIMEOUT: the worker left before the limit
    assert "received SIGUSR1" in expq.worker_log(array)
    assert expq.jobs()[job]["state"] == "pending"
    [first] = expq.attempts(job)
    assert (first["outcome"], first["reason"]) == ("preempted", "worker stopped by SIGUSR1; requeued")
