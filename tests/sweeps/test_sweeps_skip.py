"""``submit --skip-existing``: only what is missing is queued; the covering ids are named on stderr."""
from __future__ import annotations

import re
import subprocess
import sys

from expq.queue.states import State

SWEEP = ["--experiment", "s", "--sweep", "x=1,2,3"]


def _covered(stderr: str) -> dict[str, int]:
    return {name: int(job) for name, job in re.findall(r"expq: skipped (\S+): covered by job (\d+)", stderr)}


def test_resubmitting_a_finished_sweep_queues_nothing_and_names_the_covering_jobs(root):
    first = root.submit(*SWEEP, "--", sys.executable, "-c", "pass", "{x}")
    root.drain()
    again = root.expq("submit", "--skip-existing", *SWEEP, "--", sys.executable, "-c", "pass", "{x}")
    assert again.returncode == 0, again.stderr
    assert again.stdout == ""
    assert _covered(again.stderr) == {"x=1": first[0], "x=2": first[1], "x=3": first[2]}
    assert root.queue.counts()[State.DONE] == 3 and sum(root.queue.counts().values()) == 3


def test_a_failed_job_of_the_sweep_is_the_only_one_queued_again(root, tmp_path):
    flag = tmp_path / "fail-2"
    flag.touch()
    code = "import os, sys; sys.exit(1 if sys.argv[1] == '2' and os.path.exists(sys.argv[2]) else 0)"
    first = root.submit(*SWEEP, "--", sys.executable, "-c", code, "{x}", str(flag))
    root.drain()
    assert [root.state(job) for job in first] == ["done", "failed", "done"]
    flag.unlink()
    again = root.expq("submit", "--skip-existing", *SWEEP, "--", sys.executable, "-c", code, "{x}", str(flag))
    (new,) = [int(line) for line in again.stdout.split()]
    assert root.jobs()[new]["config"] == {"x": 2}
    assert _covered(again.stderr) == {"x=1": first[0], "x=3": first[2]}
    root.drain()
    assert root.state(new) == "done"
    # now every point is covered by a done job: nothing more to queue
    assert root.expq("submit", "--skip-existing", *SWEEP, "--", sys.executable, "-c", code, "{x}", str(flag)).stdout == ""


def test_pending_jobs_cover_and_other_configs_or_experiments_do_not(root):
    first = root.submit(*SWEEP, "--", "true", "{x}")
    more = root.expq("submit", "--skip-existing", "--experiment", "s", "--sweep", "x=3,4", "--", "true", "{x}")
    assert _covered(more.stderr) == {"x=3": first[2]}
    assert len(more.stdout.split()) == 1
    other = root.expq("submit", "--skip-existing", "--experiment", "t", "--sweep", "x=1", "--", "true", "{x}")
    assert len(other.stdout.split()) == 1 and "skipped" not in other.stderr


def test_concurrent_identical_skip_existing_submits_queue_the_sweep_once(root):
    root.submit("--experiment", "warmup", "--", "true")  # the queue exists, so the four race on the sweep only
    argv = [sys.executable, "-m", "expq", "--root", str(root.path), "submit", "--skip-existing", "--experiment",
            "big", "--sweep", "seed=range(200)", "--", "true", "{seed}"]
    procs = [subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [proc.communicate(timeout=120) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs), [err for _, err in outs]
    queued = [int(line) for out, _ in outs for line in out.split()]
    assert len(queued) == 200 == len(set(queued))
    skipped = sum(len(_covered(err)) for _, err in outs)
    assert skipped == 600
    seeds = sorted(job["config"]["seed"] for job in root.jobs("--experiment", "big").values())
    assert seeds == list(range(200))
