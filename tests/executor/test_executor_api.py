"""The executor from a script's ``__main__``, its error type, its import cost and its child entry point."""
from __future__ import annotations

import functools
import json
import os
import pickle
import subprocess
import sys
import textwrap

import executor_jobfns as fns
import pytest

from expq.executor import JobError
from expq.executor.payload import qualified_name

DRIVER = textwrap.dedent("""
    import json, sys
    from expq.executor import Executor

    offset = 3

    def make_adder(n):
        def add(x):
            return x + n + offset
        return add

    class Point:
        def __init__(self, x):
            self.x = x

    with Executor(root=sys.argv[1]) as ex:
        square = ex.submit(lambda x: x ** 2, 7)
        closure = ex.submit(make_adder(10), 5)
        point = ex.submit(lambda p: Point(p.x + 1), Point(1))
    print(json.dumps([square.result(), closure.result(), point.result().x, type(point.result()).__name__]))
""")


def test_a_lambda_a_closure_and_a_class_from_main_run_in_jobs(root, workers, tmp_path):
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    workers.start()
    out = subprocess.run([sys.executable, str(script), str(root)], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [49, 18, 2, "Point"]


def test_job_error_keeps_its_fields_through_pickling():
    error = JobError(3, "failed", "raised ValueError: x", "ValueError", "x", "Traceback ...\nValueError: x\n")
    copy = pickle.loads(pickle.dumps(error))
    assert (copy.job_id, copy.state, copy.reason, copy.exc_type, copy.message, copy.traceback) == (
        3, "failed", "raised ValueError: x", "ValueError", "x", "Traceback ...\nValueError: x\n")
    assert str(copy) == "job 3 failed: raised ValueError: x\n\nTraceback ...\nValueError: x"
    assert str(JobError(4, "cancelled", "cancelled by user")) == "job 4 was cancelled: cancelled by user"


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys, json; {statement}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(json.loads(out))


def test_importing_the_executor_loads_neither_cloudpickle_nor_numpy():
    assert not _loaded_after("import expq.executor") & {"cloudpickle", "expq.queue", "numpy"}
    loaded = _loaded_after("from expq.executor import Executor, Job, JobError")
    assert not loaded & {"cloudpickle", "numpy", "matplotlib", "expq.worker"}


def test_the_child_entry_point_outside_a_job_says_so_and_exits_2(tmp_path):
    env = {key: value for key, value in os.environ.items() if not key.startswith("EXPQ_")}
    done = subprocess.run([sys.executable, "-m", "expq.executor", "mod.fn"], capture_output=True, text=True,
                          env=env, cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr == "expq.executor: not inside a job (EXPQ_RUN_DIR is unset); expq worker runs this\n"


def test_expq_exports_the_executor_lazily():
    assert not _loaded_after("import expq") & {"expq.executor", "cloudpickle"}
    loaded = _loaded_after("import expq; expq.Executor, expq.Job, expq.JobError")
    assert "expq.executor.executor" in loaded and "cloudpickle" not in loaded
    import expq
    import expq.executor

    assert (expq.Executor, expq.Job, expq.JobError) == (expq.executor.Executor, expq.executor.Job, JobError)
    assert {"Executor", "Job", "JobError"} <= set(dir(expq)) & set(expq.__all__)


class _Scaler:
    def __call__(self, x):
        return 2 * x


@pytest.mark.parametrize("obj, name", [
    (fns.add, "executor_jobfns.add"), (functools.partial(functools.partial(fns.add, 1), 2), "executor_jobfns.add"),
    (_Scaler(), "test_executor_api._Scaler"), (ValueError, "ValueError"), (fns.CustomError, "executor_jobfns.CustomError"),
])
def test_jobs_are_named_after_the_function_people_would_look_up(obj, name):
    assert qualified_name(obj) == name
