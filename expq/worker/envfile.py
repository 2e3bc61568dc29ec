"""The environment a job's child gets, and ``run.env``, the file that records it.

``run.env`` holds ``KEY=VALUE`` lines with shell quoting where needed, so ``set -a; . run.env``
reproduces a job's environment by hand.
"""
from __future__ import annotations

import shlex
from collections.abc import Mapping
from pathlib import Path

from expq.contract import JobEnvironment
from expq.queue.paths import RunPaths
from expq.queue.spec import JobSpec

__all__ = ["job_environment", "env_file_text", "read_env_file"]


def job_environment(spec: JobSpec, run: RunPaths, root: Path, attempt: int, gpus: tuple[str, ...]) -> dict[str, str]:
    """The variables expq injects: where the run lives, its config, its GPUs, then the job's ``--env``."""
    env = JobEnvironment(root=root, job_id=spec.id, attempt=attempt, run_dir=run.dir, experiment=spec.experiment,
                         gpus=gpus, config=run.config).variables()
    env.update(spec.env)
    return env


def env_file_text(env: Mapping[str, str]) -> str:
    return "".join(f"{k}={shlex.quote(v)}\n" for k, v in env.items())


def read_env_file(path: Path) -> dict[str, str]:
    """Parse a ``run.env`` back (the inverse of ``env_file_text``)."""
    env = {}
    for line in shlex.split(path.read_text(), comments=True):
        key, _, value = line.partition("=")
        env[key] = value
    return env
