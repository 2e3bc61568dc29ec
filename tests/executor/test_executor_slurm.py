"""``expq.Executor`` with SLURM array workers (``expq slurm start``), on the cluster of ci/slurm-ci.sh.

Whether a cluster is usable is decided by tests/slurm/conftest.py, loaded here by path (conftest
modules cannot be imported by name): skip with the reason, or fail under CI=true.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import executor_jobfns as fns
import pytest

from expq.executor import Executor

pytestmark = pytest.mark.slurm


def _slurm_conftest():
    path = Path(__file__).parents[1] / "slurm" / "conftest.py"
    spec = importlib.util.spec_from_file_location("expq_tests_slurm_conftest", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def slurm_ready() -> None:
    helpers = _slurm_conftest()
    reason = helpers._unusable_reason()
    if reason:
        if helpers._in_ci():
            pytest.fail(f"SLURM tests must run in CI, but: {reason}", pytrace=False)
        pytest.skip(reason)


def _squeue(array: str) -> list[str]:
    done = subprocess.run(["squeue", "-h", "-j", array, "-o", "%i"], capture_output=True, text=True, timeout=30)
    return done.stdout.split() if done.returncode == 0 else []


def test_executor_jobs_run_on_slurm_array_workers_on_their_gpus(slurm_ready, tmp_path, wait_until):
    root = tmp_path / "expq root"  # a space: the batch script must quote the root
    jobs = Executor(root=root, experiment="on-slurm", gpus=1).map(fns.where_am_i, range(4))
    started = subprocess.run([sys.executable, "-m", "expq", "--root", str(root), "slurm", "start", "--workers", "2",
                              "--gpus-per-worker", "1"], capture_output=True, text=True, timeout=60)
    assert started.returncode == 0, started.stderr
    array = started.stdout.strip()
    try:
        results = [job.result(timeout=120) for job in jobs]
        assert [r["square"] for r in results] == [0, 1, 4, 9]
        assert {r["SLURM_ARRAY_JOB_ID"] for r in results} == {array}
        assert {r["SLURM_ARRAY_TASK_ID"] for r in results} <= {"0", "1"}
        for r in results:
            assert r["CUDA_VISIBLE_DEVICES"].isdigit(), r  # one GPU per job, given by SLURM to its worker
            assert r["CUDA_VISIBLE_DEVICES"] in r["SLURM_JOB_GPUS"].split(","), r
        assert all(job.state() == "done" for job in jobs)
        wait_until(lambda: not _squeue(array), timeout=60, interval=0.2,
                   message=lambda: f"array {array} still queued: {_squeue(array)}")  # --drain: workers leave
    finally:
        if _squeue(array):
            subprocess.run(["scancel", "--signal=KILL", array], capture_output=True, timeout=30)
