"""Dependencies on many jobs (``--after 3,4,5``, ``3-40``, ``--after-experiment``) and ``expq wait``."""
from __future__ import annotations

import sys

import pytest


def _jobs_writing(root, marker_dir, count: int, *extra: str) -> list[int]:
    code = "import pathlib, sys; pathlib.Path(sys.argv[1]).touch()"
    return root.submit("--experiment", "first", "--sweep", f"i=range({count})", *extra, "--",
                       sys.executable, "-c", code, f"{marker_dir}/{{i}}")


def test_after_a_range_runs_once_every_job_of_it_is_done(root, tmp_path):
    markers = tmp_path / "m"
    markers.mkdir()
    firsts = _jobs_writing(root, markers, 38)
    assert firsts == list(range(1, 39))
    check = f"import os, sys; sys.exit(0 if len(os.listdir({str(markers)!r})) == 38 else 1)"
    (last,) = root.submit("--after", "1-38", "--priority", "100", "--", sys.executable, "-c", check)
    assert root.jobs()[last]["after"] == list(range(1, 39))
    root.drain("--slots", "4")
    assert root.state(last) == "done"  # it ran only after all 38 were done, though its priority is higher


def test_after_a_list_and_after_an_experiment(root, tmp_path):
    markers = tmp_path / "m"
    markers.mkdir()
    firsts = _jobs_writing(root, markers, 3)
    (by_list,) = root.submit("--after", "1,3", "--", "true")
    (by_experiment,) = root.submit("--after-experiment", "first", "--", "true")
    jobs = root.jobs()
    assert jobs[by_list]["after"] == [1, 3]
    assert jobs[by_experiment]["after"] == firsts
    root.drain()
    assert root.state(by_list) == root.state(by_experiment) == "done"


@pytest.mark.parametrize(("args", "message"), [
    (["--after", "3-1"], "'3-1' is not a range of job ids"),
    (["--after", "1-x"], "is not a job id, a list (3,4,5) or a range (3-40)"),
    (["--after", "1-999999"], "names more than 100,000 jobs"),
    (["--after", "1,99"], "no such job: 99"),
    (["--after-experiment", "nothing"], "no such experiment with queued jobs: nothing"),
])
def test_bad_dependencies_fail_before_anything_is_written(root, args, message):
    root.submit("--", "true")
    before = sorted(p.relative_to(root.path) for p in root.path.rglob("*"))
    done = root.expq("submit", *args, "--", "true")
    assert done.returncode == 2
    assert done.stderr.startswith("expq: error: ") and message in done.stderr and done.stderr.count("\n") == 1
    assert sorted(p.relative_to(root.path) for p in root.path.rglob("*")) == before


def test_wait_exits_0_when_all_are_done_and_1_when_one_failed(root):
    ok = root.submit("--experiment", "w", "--sweep", "x=1,2", "--", "true", "{x}")
    bad = root.submit("--experiment", "w", "--", "false")
    root.worker()
    done = root.expq("wait", f"{ok[0]}-{ok[1]}")
    assert done.returncode == 0, done.stderr
    assert "2/2 ended (2 done)" in done.stderr
    whole = root.expq("wait", "--experiment", "w")
    assert whole.returncode == 1
    assert "3/3 ended (2 done, 1 failed)" in whole.stderr.splitlines()[-1]
    assert root.expq("wait", str(bad[0])).returncode == 1


def test_wait_times_out_with_exit_1_and_says_so(root):
    (job,) = root.submit("--", "true")  # no worker: it stays pending
    done = root.expq("wait", str(job), "--timeout", "0.3s")
    assert done.returncode == 1
    assert done.stderr.splitlines()[-1].endswith("timed out after 0.3 s")
    assert root.state(job) == "pending"


@pytest.mark.parametrize(("args", "message"), [
    (["77"], "expq: error: no such job: 77\n"),
    ([], "expq: error: nothing to wait for: give job ids or --experiment NAME\n"),
    (["--experiment", "none"], "expq: error: no such experiment with queued jobs: none\n"),
    (["1", "--timeout", "2x"], "'2x' is not a duration"),
])
def test_wait_on_unknown_jobs_is_bad_input(root, args, message):
    root.submit("--", "true")
    done = root.expq("wait", *args)
    assert done.returncode == 2
    assert message in done.stderr
