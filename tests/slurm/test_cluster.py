"""The SLURM cluster does what expq's SLURM support relies on.

These check the cluster (ci/slurm-ci.sh), not expq: GPUs per array task, the SIGTERM that
scancel sends before SIGKILL, and the warning signal before the time limit (`--signal`).

Timing facts of this cluster (measured, see ci/slurm-ci.sh): slurmctld checks time limits and
`--signal` warnings only every 30 s, and sends the warning at the first check where less than
N + 30 s are left; `--time` is in whole minutes. So `--time=1 --signal=B:SIG@N` with N >= 30
delivers the signal 0-30 s after the job starts; the time limit itself (state TIMEOUT) strikes
60-90 s after the start, which is why no test here waits for it by default.
"""
from __future__ import annotations

import os
import time

import psutil
import pytest

pytestmark = pytest.mark.slurm

# A batch script that sleeps in the background and waits, so that bash runs its traps at once
# (a trap does not run while bash waits for a foreground child).
TRAP_SCRIPT = """\
echo "start $(date +%s.%N)" >> {marker}
trap 'echo "{signal} $(date +%s.%N)" >> {marker}; kill $! 2>/dev/null; exit 0' {signal}
sleep 300 &
echo "child $!" >> {marker}
wait $!
echo "slept to the end" >> {marker}
"""


def _started(marker) -> bool:
    return marker.exists() and "start" in marker.read_text()


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_sbatch_wrap_runs_and_is_reported_completed(slurm, tmp_path):
    job = slurm.sbatch("--output", str(tmp_path / "out.txt"), wrap="echo hello from $SLURM_JOB_ID")
    slurm.wait_gone(job, timeout=30)
    assert (tmp_path / "out.txt").read_text().strip() == f"hello from {job}"
    # MinJobAge keeps finished jobs visible to `scontrol show job` (no sacct here)
    assert slurm.state(job) == "COMPLETED"


def test_array_tasks_get_distinct_gpus(slurm, tmp_path):
    job = slurm.sbatch(
        "--array=0-1", "--gres=gpu:1", "--output", str(tmp_path / "task-%a.out"),
        # sleep: both tasks hold their GPU at the same time, so they cannot get the same one
        wrap='echo "$SLURM_ARRAY_TASK_ID $CUDA_VISIBLE_DEVICES $SLURM_JOB_GPUS"; sleep 2',
    )
    slurm.wait_gone(job, timeout=60)
    lines = [(tmp_path / f"task-{i}.out").read_text().split() for i in (0, 1)]
    assert [line[0] for line in lines] == ["0", "1"], lines
    gpus = [line[1] for line in lines]
    assert all(g.isdigit() for g in gpus), f"CUDA_VISIBLE_DEVICES not one GPU id per task: {lines}"
    assert gpus[0] != gpus[1], f"both tasks got GPU {gpus[0]}"
    assert [line[2] for line in lines] == gpus  # SLURM_JOB_GPUS agrees


def test_gres_gpu_2_gives_two_devices(slurm, tmp_path):
    job = slurm.sbatch("--gres=gpu:2", "--output", str(tmp_path / "out.txt"),
                       wrap='echo "$CUDA_VISIBLE_DEVICES"')
    slurm.wait_gone(job, timeout=30)
    ids = (tmp_path / "out.txt").read_text().strip().split(",")
    assert len(ids) == 2 and len(set(ids)) == 2 and all(i.isdigit() for i in ids), ids


def test_scancel_sends_sigterm_to_batch_script_first(slurm, tmp_path):
    marker = tmp_path / "marker"
    script = slurm.write_script(tmp_path / "job.sh", TRAP_SCRIPT.format(marker=marker, signal="TERM"))
    job = slurm.sbatch("--output", str(tmp_path / "out.txt"), script=script)
    slurm.wait_until(lambda: _started(marker), timeout=30, message="job did not start")
    slurm.cancel(job)
    slurm.wait_gone(job, timeout=30)
    text = marker.read_text()
    assert "TERM" in text, f"batch script got no SIGTERM: {text!r}"
    assert "slept to the end" not in text
    assert slurm.state(job) == "CANCELLED"


def test_scancel_kills_after_killwait_when_term_is_ignored(slurm, tmp_path):
    """KillWait (5 s here) is the grace period a worker has to re-queue its jobs on scancel."""
    marker = tmp_path / "marker"
    script = slurm.write_script(tmp_path / "job.sh", f"""\
echo "start" >> {marker}
trap 'echo TERM >> {marker}' TERM      # note it, keep running
while true; do sleep 0.1; done
""")
    job = slurm.sbatch("--output", str(tmp_path / "out.txt"), script=script)
    slurm.wait_until(lambda: _started(marker), timeout=30, message="job did not start")
    t0 = time.monotonic()
    slurm.cancel(job)
    slurm.wait_gone(job, timeout=30)
    took = time.monotonic() - t0
    assert "TERM" in marker.read_text()
    assert 3 <= took <= 20, f"job gone {took:.1f} s after scancel; KillWait is 5 s"


def test_signal_before_time_limit_reaches_batch_script(slurm, tmp_path):
    """`--signal=B:USR1@N` reaches the batch shell before the time limit.

    With --time=1 (the shortest limit) and N >= 30 the warning comes at slurmctld's first
    time-limit check, 0-30 s after the start (checks run every 30 s).
    """
    marker = tmp_path / "marker"
    script = slurm.write_script(tmp_path / "job.sh", TRAP_SCRIPT.format(marker=marker, signal="USR1"))
    job = slurm.sbatch("--time=1", "--signal=B:USR1@50", "--output", str(tmp_path / "out.txt"), script=script)
    slurm.wait_gone(job, timeout=50)
    lines = dict(line.split() for line in marker.read_text().splitlines() if line.count(" ") == 1)
    assert "USR1" in lines, f"no USR1 before the job ended: {marker.read_text()!r}"
    delay = float(lines["USR1"]) - float(lines["start"])
    assert delay < 45, f"USR1 came {delay:.1f} s after the start"
    print(f"--signal=B:USR1@50 with --time=1 arrived {delay:.1f} s after the start")
    assert slurm.state(job) == "COMPLETED"  # the trap exited 0 before the time limit
    child = int(lines["child"])  # the trap ends the script's sleep too: nothing outlives the job
    slurm.wait_until(lambda: _gone(child), timeout=10, message=f"the job's sleep {child} outlived it")


@pytest.mark.skipif(not os.environ.get("EXPQ_SLURM_SLOW"),
                    reason="takes 65-95 s (SLURM time limits are whole minutes); set EXPQ_SLURM_SLOW=1")
def test_time_limit_terms_then_ends_job_as_timeout(slurm, tmp_path):
    marker = tmp_path / "marker"
    script = slurm.write_script(tmp_path / "job.sh", TRAP_SCRIPT.format(marker=marker, signal="TERM"))
    job = slurm.sbatch("--time=1", "--output", str(tmp_path / "out.txt"), script=script)
    slurm.wait_gone(job, timeout=150)
    assert "TERM" in marker.read_text()
    assert slurm.state(job) == "TIMEOUT"
