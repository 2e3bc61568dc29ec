"""Issue 10 item 3: one reading of the worker/job contract, checked against a real worker.

A job submitted with ``expq submit`` and run by ``expq worker --drain`` (real processes) reports
what it sees through ``expq.contract`` and ``Experiment()``; the test compares that with the
files the worker wrote, named by the same module.
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from experiment_scripts import child_env

import expq
from expq import contract
from expq.experiment.env import load_job_config

JOB = """
import json, os, sys
import expq
from expq import contract

job = contract.JobEnvironment.read()
exp = expq.Experiment()
report = {
    "env": {name: os.environ.get(name) for name in sorted(contract.RESERVED_VARS)},
    "job": {"root": str(job.root), "job_id": job.job_id, "attempt": job.attempt, "run_dir": str(job.run_dir),
            "experiment": job.experiment, "config_path": str(job.config_path), "gpus": list(job.gpus)},
    "exp": {"name": exp.name, "path": str(exp.path), "root": str(exp.root), "job_id": exp.job_id},
    "config": exp.config,
    "types": {key: type(value).__name__ for key, value in exp.config.items()},
}
exp.save(report, "report")
exp.close()
"""


def _cli(root: Path, *argv: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "expq", "--root", str(root), *argv], cwd=cwd, env=child_env(),
                          capture_output=True, text=True, timeout=timeout, check=True)


def _read_env_file(path: Path) -> dict[str, str]:
    """``run.env`` as a shell reads it (``set -a; . run.env``): KEY=VALUE words."""
    return dict(word.partition("=")[::2] for word in shlex.split(path.read_text(), comments=True))


@pytest.fixture
def finished_job(tmp_path: Path) -> tuple[Path, Path, dict[str, object]]:
    """Root, run directory and the job's own report of a job that ran through a real worker."""
    (tmp_path / "job.py").write_text(JOB)
    (tmp_path / "c.yaml").write_text("lr: 1e-3\nday: 2024-01-02\nmodel: {depth: 2}\n")
    root = tmp_path / "root"
    job_id = _cli(root, "submit", "--experiment", "contract", "--config", "c.yaml", "--set", "seed=3",
                  "--", sys.executable, str(tmp_path / "job.py"), cwd=tmp_path).stdout.strip()
    _cli(root, "worker", "--drain", "--gpus", "none", cwd=tmp_path)
    runs = [p for p in (root / contract.EXPERIMENTS_DIR / "contract").iterdir() if p.is_dir()]
    assert len(runs) == 1
    run_dir = runs[0]
    result = json.loads((run_dir / contract.RESULT_JSON).read_text())
    assert result["state"] == "done", (run_dir / contract.STDERR_LOG).read_text()
    report = json.loads((run_dir / contract.FILES_DIR / "report.json").read_text())
    assert report["job"]["job_id"] == int(job_id)
    return root, run_dir, report


def test_the_worker_writes_every_contract_file(finished_job: tuple[Path, Path, dict[str, object]]) -> None:
    _, run_dir, _ = finished_job
    for name in (contract.JOB_JSON, contract.CONFIG_YAML, contract.RUN_ENV, contract.STDOUT_LOG,
                 contract.STDERR_LOG, contract.RESULT_JSON, contract.RUN_JSON, contract.RUN_LOG):
        assert (run_dir / name).is_file(), name


def test_what_the_worker_writes_is_what_the_job_reads(finished_job: tuple[Path, Path, dict[str, object]]) -> None:
    root, run_dir, report = finished_job
    written = _read_env_file(run_dir / contract.RUN_ENV)
    # every variable the contract names was set, in run.env and in the job's environment alike
    assert report["env"] == {name: written[name] for name in sorted(contract.RESERVED_VARS)}
    job = contract.JobEnvironment.read(written)
    assert job is not None
    assert job.variables() == {name: written[name] for name in job.variables()}
    assert report["job"] == {"root": str(job.root), "job_id": job.job_id, "attempt": job.attempt,
                             "run_dir": str(job.run_dir), "experiment": "contract",
                             "config_path": str(run_dir / contract.CONFIG_YAML), "gpus": []}
    assert job.root == root.absolute() and job.run_dir == run_dir and job.attempt == 1
    # Experiment() inside the job bound to the worker's run directory, root and job id
    assert report["exp"] == {"name": "contract", "path": str(run_dir.resolve()), "root": str(root.resolve()),
                             "job_id": job.job_id}


def test_the_job_config_means_the_same_to_every_reader(finished_job: tuple[Path, Path, dict[str, object]]) -> None:
    _, run_dir, report = finished_job
    want = {"lr": 0.001, "day": "2024-01-02", "model": {"depth": 2}, "seed": 3}
    assert report["config"] == want
    assert report["types"] == {"lr": "float", "day": "str", "model": "dict", "seed": "int"}
    job = contract.JobEnvironment.read(_read_env_file(run_dir / contract.RUN_ENV))
    assert job is not None and load_job_config(job) == want
    stored = expq.open(run_dir)
    assert stored.config == want and stored.state == "done"


def test_a_string_that_looks_like_a_float_survives_the_worker(tmp_path: Path) -> None:
    (tmp_path / "job.py").write_text(JOB)
    root = tmp_path / "root"
    _cli(root, "submit", "--experiment", "s", "--set", "tag='1e-3'", "--", sys.executable, str(tmp_path / "job.py"),
         cwd=tmp_path)
    _cli(root, "worker", "--drain", "--gpus", "none", cwd=tmp_path)
    (run_dir,) = (root / contract.EXPERIMENTS_DIR / "s").iterdir()
    report = json.loads((run_dir / contract.FILES_DIR / "report.json").read_text())
    assert report["config"] == {"tag": "1e-3"}


def test_a_root_with_a_tilde_means_home_for_the_cli_and_the_api(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("EXPQ_ROOT", "~/r")
    exp = expq.Experiment("tilde", capture_output=False, sources=False)
    exp.close()
    assert exp.path.is_relative_to((tmp_path / "home" / "r").resolve())
    assert not (tmp_path / "~").exists()
    from expq.queue.paths import resolve_root as queue_root  # the CLI's resolution

    assert contract.resolve_root() == queue_root() == tmp_path / "home" / "r"
    assert contract.resolve_root("~/x") == tmp_path / "home" / "x"
    assert contract.resolve_root(None, {"EXPQ_ROOT": ""}) == Path.cwd() / contract.DEFAULT_ROOT_NAME
    assert os.path.isabs(contract.resolve_root("rel"))


def test_job_environment_reads_back_what_it_writes(tmp_path: Path) -> None:
    job = contract.JobEnvironment(root=tmp_path, job_id=12, attempt=2, run_dir=tmp_path / "experiments" / "e" / "12",
                                  experiment="e", gpus=("0", "3"))
    variables = job.variables()
    assert set(variables) == contract.RESERVED_VARS
    assert variables[contract.GPUS_VAR] == "0,3" and variables[contract.CONFIG_VAR].endswith("/12/config.yaml")
    assert contract.JobEnvironment.read(variables) == contract.JobEnvironment(
        root=job.root, job_id=12, attempt=2, run_dir=job.run_dir, experiment="e", gpus=("0", "3"),
        config=job.config_path)
    assert contract.JobEnvironment.read({}) is None


def test_a_hand_made_environment_is_read_leniently(tmp_path: Path) -> None:
    run_dir = tmp_path / "experiments" / "e" / "7"
    job = contract.JobEnvironment.read({contract.RUN_DIR_VAR: str(run_dir), contract.JOB_ID_VAR: "٣"})
    assert job is not None
    assert (job.job_id, job.attempt, job.experiment, job.root, job.gpus) == (None, None, "e", tmp_path, ())
    assert job.config_path == run_dir / contract.CONFIG_YAML


@pytest.mark.parametrize(("name", "reserved"), [("EXPQ_RUN_DIR", True), ("EXPQ_ANYTHING", True),
                                                ("CUDA_VISIBLE_DEVICES", True), ("CUDA_DEVICE_ORDER", True),
                                                ("OMP_NUM_THREADS", False), ("expq_run_dir", False)])
def test_reserved_variables(name: str, reserved: bool) -> None:
    assert contract.is_reserved_var(name) is reserved
