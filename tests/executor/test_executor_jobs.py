"""``expq.Executor`` against real workers: values, exceptions, map, sweep, cancel, retries, timeouts."""
from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import executor_jobfns as fns
import numpy as np
import psutil
import pytest

import expq
from expq.errors import InputError, NotFound
from expq.executor import Executor, Job, JobError

RESULT_TIMEOUT = 60


def test_a_numpy_array_comes_back_and_the_job_is_an_ordinary_one(root, workers, status):
    workers.start()
    job = Executor(root=root, experiment="arrays").submit(fns.make_array, 5, scale=2.0)
    value = job.result(timeout=RESULT_TIMEOUT)
    assert value.dtype == np.float32 and value.tolist() == [0.0, 2.0, 4.0, 6.0, 8.0]
    assert job.done() and not job.cancelled() and job.state() == "done"
    assert job.stdout() == "making 5 values\n"
    record = status(root)[job.id]
    assert record["command"][1:] == ["-m", "expq.executor", "executor_jobfns.make_array"]
    assert (record["state"], record["experiment"], record["name"]) == ("done", "arrays", "make_array")
    assert record["run_dir"] == str(job.run_dir)
    assert stat.S_IMODE(os.stat(job.run_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(job.run_dir / "call.pkl").st_mode) == 0o600


def test_an_exception_comes_back_with_its_type_message_and_traceback(root, workers):
    workers.start()
    job = Executor(root=root).submit(fns.fail_deep, 7)
    with pytest.raises(JobError) as caught:
        job.result(timeout=RESULT_TIMEOUT)
    error = caught.value
    assert (error.job_id, error.state) == (job.id, "failed")
    assert error.exc_type == "executor_jobfns.CustomError"
    assert error.message == "went wrong with code 7"
    assert error.reason == "raised executor_jobfns.CustomError: went wrong with code 7"
    assert "in _inner_failure" in error.traceback and "raise CustomError(" in error.traceback
    assert "expq/executor/child.py" not in error.traceback  # the user's frames only
    assert error.traceback.strip() in str(error)
    assert isinstance(error.__cause__, fns.CustomError) and error.__cause__.code == 7
    assert job.exception() is error
    assert "went wrong with code 7" in job.stderr()


def test_a_return_value_that_cannot_be_pickled_fails_the_job_with_that_reason(root, workers):
    workers.start()
    job = Executor(root=root).submit(fns.return_a_lock)
    with pytest.raises(JobError, match="return value") as caught:
        job.result(timeout=RESULT_TIMEOUT)
    assert "_thread.lock" in caught.value.reason and "cannot be pickled" in caught.value.reason
    assert job.state() == "failed"


def test_a_process_that_exits_without_returning_is_an_error_though_the_job_is_done(root, workers):
    workers.start()
    job = Executor(root=root).submit(fns.exit_without_returning)
    with pytest.raises(JobError, match="exited without recording a return value"):
        job.result(timeout=RESULT_TIMEOUT)
    assert job.state() == "done"  # exit status 0: for the queue, the command succeeded


def test_map_runs_each_item_exactly_once_on_two_workers_and_keeps_input_order(root, workers, tmp_path, status,
                                                                             wait_until):
    marks = tmp_path / "marks"
    marks.mkdir()
    workers.start(slots=2)
    workers.start(slots=2)
    registered = root / "queue" / "workers"  # both serving before the jobs come, so both take some
    wait_until(lambda: len(list(registered.glob("*.json"))) == 2, timeout=30, message="workers did not register")
    jobs = Executor(root=root).map(fns.mark_once, [str(marks)] * 100, range(100))
    assert [job.id for job in jobs] == list(range(jobs[0].id, jobs[0].id + 100))  # one allocation, in order
    finished = list(concurrent.futures.as_completed(jobs, timeout=RESULT_TIMEOUT))
    assert sorted(job.id for job in finished) == [job.id for job in jobs]
    assert [job.result() for job in jobs] == [i * i for i in range(100)]
    assert sorted(int(name.split("-")[0]) for name in os.listdir(marks)) == list(range(100))
    records = status(root)
    assert {records[job.id]["attempts"] for job in jobs} == {1}
    hosts = {json.loads((job.run_dir / "result.json").read_text())["worker_id"] for job in jobs}
    assert len(hosts) == 2, "both workers should have taken jobs"


def test_sweep_makes_each_point_the_jobs_config_seen_by_capture(root, workers, status, tmp_path):
    workers.start(slots=2)
    # cwd: the experiment API snapshots the sources of the job's project, here a small folder
    ex = Executor(root=root, experiment="grid", cwd=tmp_path)
    jobs = ex.sweep(fns.train, grid={"lr": [0.1, 0.2], "seed": range(2)})
    results = [job.result(timeout=RESULT_TIMEOUT) for job in jobs]
    points = [(lr, seed) for lr in (0.1, 0.2) for seed in range(2)]
    assert [(r["lr"], r["seed"]) for r in results] == points
    assert [r["config"] for r in results] == [{"lr": lr, "seed": seed} for lr, seed in points]
    assert [r["args"] for r in results] == [[lr, seed] for lr, seed in points]
    assert all(r["extra"] == "none" and r["cwd"] == str(tmp_path) for r in results)
    records = status(root)
    assert [records[job.id]["name"] for job in jobs] == [f"lr={lr},seed={seed}" for lr, seed in points]
    assert [records[job.id]["config"] for job in jobs] == [{"lr": lr, "seed": seed} for lr, seed in points]
    assert (jobs[0].run_dir / "metrics").is_dir()  # the experiment API wrote into the job's run
    assert json.loads((jobs[0].run_dir / "run.json").read_text())["state"] == "done"


def test_cancel_kills_a_running_job_and_its_escaped_grandchild(root, workers, tmp_path, wait_until):
    workers.start()
    pid_file = tmp_path / "grandchild.pid"
    job = Executor(root=root).submit(fns.sleep_with_grandchild, str(pid_file))
    wait_until(pid_file.exists, timeout=RESULT_TIMEOUT, message="the job never started its grandchild")
    grandchild = int(pid_file.read_text())
    assert job.running() and psutil.pid_exists(grandchild)
    assert job.cancel() is True
    with pytest.raises(JobError) as caught:
        job.result(timeout=RESULT_TIMEOUT)
    assert (caught.value.state, caught.value.reason) == ("cancelled", "cancelled by user")
    assert job.cancelled() and job.state() == "cancelled"
    wait_until(lambda: not psutil.pid_exists(grandchild) or psutil.Process(grandchild).status() == "zombie",
               timeout=10, message=f"grandchild {grandchild} survived the cancel")
    assert job.cancel() is False  # finished: nothing to cancel


def test_retries_run_a_function_that_fails_once_again(root, workers, status):
    workers.start()
    job = Executor(root=root, retries=1).submit(fns.fail_first_attempt)
    assert job.result(timeout=RESULT_TIMEOUT) == "succeeded on attempt 2"
    assert status(root)[job.id]["attempts"] == 2
    assert "first attempt fails on purpose" in job.stderr()  # the first attempt's log is kept


def test_result_with_a_timeout_on_a_pending_job_raises_and_leaves_it_pending(root):
    job = Executor(root=root).submit(fns.add, 1, 2)
    with pytest.raises(TimeoutError, match=f"job {job.id} did not finish within 0.1 s"):
        job.result(timeout=0.1)
    with pytest.raises(TimeoutError):
        job.exception(timeout=0)
    assert job.state() == "pending" and not job.done() and not job.running()


def test_a_job_reattached_from_another_process_gives_the_result(root, workers):
    job = Executor(root=root).submit(fns.add, 20, 22)
    workers.start()
    code = ("import sys; from expq.executor import Job; "
            "job = Job(int(sys.argv[1]), root=sys.argv[2]); print(job.result(timeout=60), job.state())")
    out = subprocess.run([sys.executable, "-c", code, str(job.id), str(root)], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": os.path.dirname(fns.__file__)}).stdout
    assert out.split() == ["42", "done"]
    assert Job(job.id, root=root).result(timeout=0) == 42  # finished: resolved on attach, no waiting


def test_the_context_manager_waits_for_its_jobs(root, workers):
    workers.start(slots=2)
    with Executor(root=root) as ex:
        jobs = ex.map(fns.add, range(4), range(4))
    done, not_done = concurrent.futures.wait(jobs, timeout=0)
    assert not not_done and [job.result() for job in jobs] == [0, 2, 4, 6]
    with pytest.raises(RuntimeError, match="shut down"):
        ex.submit(fns.add, 1, 1)


def test_bad_calls_fail_before_anything_is_queued(root):
    ex = Executor(root=root)
    ex.submit(fns.add, 0, 0)  # one queued job, so the queue exists
    before = sorted(os.listdir(root / "experiments" / "default"))
    with pytest.raises(InputError, match=r"call 2 of 2\).*cannot be pickled"):
        ex.map(fns.add, [1, fns.threading.Lock()], [1, 2])
    with pytest.raises(InputError, match="sweep key 'a.b'"):
        ex.sweep(fns.add, {"a.b": [1]})
    with pytest.raises(InputError, match="expected a list of values"):
        ex.sweep(fns.add, {"a": "xyz"})
    with pytest.raises(InputError, match="JSON types"):
        ex.sweep(fns.add, {"a": [object()]})
    with pytest.raises(InputError, match="not callable"):
        ex.submit(42)
    assert sorted(os.listdir(root / "experiments" / "default")) == before
    assert len(os.listdir(root / "queue" / "pending")) == 1


@pytest.mark.parametrize("options, text", [
    ({"gpus": -1}, "invalid gpus=-1"), ({"retries": 1.5}, "invalid retries=1.5"),
    ({"priority": 10**6}, "invalid priority"), ({"timeout": 0}, "invalid timeout=0"),
    ({"env": {"EXPQ_RUN_DIR": "x"}}, "cannot be overridden"), ({"env": {"A": 1}}, "values must be strings"),
    ({"experiment": "../up"}, "invalid experiment name"), ({"python": ""}, "invalid python"),
    ({"cwd": "/no/such/dir"}, "no such directory for cwd: /no/such/dir"),
])
def test_bad_options_are_refused_by_name(root, options, text):
    with pytest.raises(InputError, match=text):
        Executor(root=root, **options)
    assert not root.exists()


def test_a_call_file_others_could_write_is_refused_by_the_job(root, workers):
    job = Executor(root=root).submit(fns.add, 1, 2)
    os.chmod(job.run_dir / "call.pkl", 0o666)
    workers.start()
    with pytest.raises(JobError, match="writable by other users") as caught:
        job.result(timeout=RESULT_TIMEOUT)
    assert "call file refused" in caught.value.reason


def test_a_job_past_its_timeout_fails_with_the_workers_reason(root, workers):
    workers.start()
    job = Executor(root=root, timeout=0.5).submit(time.sleep, 60)
    with pytest.raises(JobError) as caught:
        job.result(timeout=RESULT_TIMEOUT)
    assert caught.value.state == "failed" and caught.value.reason.startswith("timeout"), caught.value.reason
    assert caught.value.traceback == "" and caught.value.__cause__ is None


def test_an_outcome_file_others_could_write_is_not_loaded(root, workers):
    workers.start()
    job = Executor(root=root).submit(fns.add, 2, 3)
    assert job.result(timeout=RESULT_TIMEOUT) == 5
    os.chmod(job.run_dir / "outcome.pkl", 0o646)
    with pytest.raises(JobError, match="outcome file is not loaded.*writable by other users"):
        Job(job.id, root=root).result(timeout=0)


def test_an_outcome_file_that_is_a_fifo_is_refused_not_waited_on(root, workers):
    workers.start()
    job = Executor(root=root).submit(fns.add, 2, 3)
    assert job.result(timeout=RESULT_TIMEOUT) == 5
    (job.run_dir / "outcome.pkl").unlink()
    os.mkfifo(job.run_dir / "outcome.pkl", 0o600)  # a job may leave anything in its run directory
    found: list[BaseException] = []

    def load() -> None:
        try:
            Job(job.id, root=root).result(timeout=0)
        except JobError as exc:
            found.append(exc)

    reader = threading.Thread(target=load, daemon=True)
    reader.start()
    reader.join(timeout=30)
    assert found and "not a regular file" in str(found[0]), "reading a FIFO waited for a writer"


def test_attach_and_shutdown_cancelling_what_is_still_pending(root):
    earlier = Executor(root=root).map(fns.add, range(3), range(3))
    with pytest.raises(NotFound, match="no such job: 999"):
        Job(999, root=root)
    ex = Executor(root=root)
    jobs = ex.attach(job.id for job in earlier)
    assert [job.id for job in jobs] == [job.id for job in earlier] and ex.jobs == jobs
    ex.shutdown(wait=True, cancel_pending=True)  # no worker: all three are pending, so this returns
    assert [job.state() for job in jobs] == ["cancelled"] * 3
    assert all(job.cancelled() for job in earlier)  # the first executor's futures follow the queue
    with pytest.raises(JobError, match="was cancelled: cancelled by user"):
        earlier[0].result(timeout=RESULT_TIMEOUT)


def test_the_experiment_a_failing_function_opened_records_the_failure(root, workers, tmp_path):
    workers.start()
    job = Executor(root=root, cwd=tmp_path).submit(fns.log_then_fail)
    with pytest.raises(JobError, match="raised ValueError: diverged"):
        job.result(timeout=RESULT_TIMEOUT)
    run = json.loads((job.run_dir / "run.json").read_text())
    assert (run["state"], run["job_id"], run["error"]) == ("failed", job.id, "ValueError: diverged")
    assert (job.run_dir / "metrics").is_dir()


def test_python_names_the_jobs_interpreter_and_a_missing_cloudpickle_is_the_reason(root, workers, tmp_path):
    # An interpreter without site-packages stands for a node whose Python lacks the executor extra;
    # the job runs in the repository, where `-m expq.executor` finds expq without site-packages.
    python = tmp_path / "python-without-site"
    python.write_text(f"#!/bin/sh\nexec {sys.executable} -S \"$@\"\n")
    python.chmod(0o755)
    workers.start()
    ex = Executor(root=root, python=str(python), cwd=Path(expq.__file__).parents[1])
    by_reference, by_value = ex.submit(fns.add, 1, 2), ex.submit(lambda: 3)
    assert by_reference.result(timeout=RESULT_TIMEOUT) == 3  # plain pickle is enough for it
    with pytest.raises(JobError) as caught:
        by_value.result(timeout=RESULT_TIMEOUT)
    assert caught.value.reason == "cannot load the call: ModuleNotFoundError: No module named 'cloudpickle'"
    assert by_value.spec.command[0] == str(python)


def test_a_job_lost_with_its_worker_fails_with_the_reapers_reason(root, workers, tmp_path, wait_until):
    started, release = tmp_path / "started", tmp_path / "release"
    doomed = workers.start()
    job = Executor(root=root).submit(fns.wait_for_file, str(release), str(started))
    wait_until(started.exists, timeout=RESULT_TIMEOUT, message="the job never started")
    doomed.send_signal(signal.SIGKILL)
    doomed.wait()
    workers.start()  # finds the dead worker's job on this host and, without retries, fails it
    try:
        with pytest.raises(JobError) as caught:
            job.result(timeout=RESULT_TIMEOUT)
    finally:
        release.touch()  # whatever of the lost attempt still runs may end
    assert caught.value.state == "failed" and caught.value.traceback == ""
    assert "worker" in caught.value.reason and "raised" not in caught.value.reason, caught.value.reason
