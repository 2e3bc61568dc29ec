"""A root filled by a real worker: a sweep whose jobs log metrics through the experiment API.

The sweep root is built once per session (submitting and draining costs seconds) and only read
by the tests; each test exports into its own ``tmp_path``.
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

JOB = r'''
import math, os, time
from pathlib import Path
import expq

exp = expq.Experiment(flush_interval=0.05)
lr = exp.config["lr"]
with exp:
    for step in range(exp.config.get("steps", 6)):
        exp.log_scalar("loss", 1 / (step + 1) + lr)
        exp.log_scalar("acc/val", step * lr)
    if exp.config.get("nan"):
        exp.log_scalar("loss", math.nan)
        exp.log_scalar("loss", math.inf)
    exp.save({"lr": lr}, "summary")
    gate = exp.config.get("gate")
    if gate:  # a job that stays running until the test opens the gate, then logs 4 more points
        exp.flush()
        deadline = time.monotonic() + 60
        while not Path(gate).exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        for step in range(4):
            exp.log_scalar("loss", 0.01 * step)
    with exp.start_run("finetune"):
        exp.log_scalar("loss", lr / 2)
'''


def expq_cli(root: Path, *args: str, env: dict[str, str] | None = None,
             check: bool = True) -> subprocess.CompletedProcess[str]:
    """``python -m expq --root ROOT ARGS`` in a child process."""
    return subprocess.run([sys.executable, "-m", "expq", "--root", str(root), *args], capture_output=True,
                          text=True, check=check, env=env, timeout=120)


def submit(root: Path, script: Path, *args: str) -> list[int]:
    out = expq_cli(root, "submit", "--experiment", "sweep", *args, "--", sys.executable, str(script)).stdout
    return [int(line) for line in out.split()]


@pytest.fixture(scope="session")
def sweep_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three finished jobs of experiment ``sweep`` (lr 0.1, 0.01, 0.001; the last logs NaN and inf), each
    with a nested run ``finetune``; the worker runs them with ``EXPQ_TENSORBOARD=1`` (live event files)."""
    base = tmp_path_factory.mktemp("sweep")
    root = base / "root"
    script = base / "job.py"
    script.write_text(JOB)
    submit(root, script, "--sweep", "lr=0.1,0.01")
    submit(root, script, "--set", "lr=0.001", "--set", "nan=true")
    expq_cli(root, "worker", "--drain", "--gpus", "none", "--slots", "3", "--poll", "0.05",
             env={**os.environ, "EXPQ_TENSORBOARD": "1"})
    return root


@pytest.fixture
def job_script(tmp_path: Path) -> Path:
    script = tmp_path / "job.py"
    script.write_text(JOB)
    return script


@pytest.fixture(scope="session")
def cli() -> Callable[..., subprocess.CompletedProcess[str]]:
    return expq_cli
