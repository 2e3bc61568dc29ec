"""What a worker tells a job's process through the environment: the only module that knows EXPQ_* names.

The worker (expq.worker) sets these variables for each job's child; the experiment API reads
them so that ``Experiment(...)`` and ``get_experiment()`` bind to the job's run directory.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from expq.errors import InputError

__all__ = ["JobBinding", "current_job", "default_root", "ROOT_VAR"]

ROOT_VAR = "EXPQ_ROOT"
_JOB_ID = "EXPQ_JOB_ID"
_RUN_DIR = "EXPQ_RUN_DIR"
_EXPERIMENT = "EXPQ_EXPERIMENT"
_CONFIG = "EXPQ_CONFIG"
DEFAULT_ROOT_NAME = "expq-root"


@dataclass(frozen=True)
class JobBinding:
    """The queued job this process runs inside: its run directory, experiment and config file."""

    job_id: int | None
    run_dir: Path
    experiment: str
    config_path: Path | None
    root: Path | None

    def load_config(self) -> dict[str, Any]:
        """The job's resolved config (``config.yaml`` written by the worker), or ``{}`` if none.

        Raises:
            InputError: the file exists but is not a YAML mapping.
        """
        if self.config_path is None or not self.config_path.exists():
            return {}
        import yaml

        with open(self.config_path, encoding="utf-8") as handle:
            data = yaml.load(handle, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        if data is None:
            return {}
        if not isinstance(data, dict):
            raise InputError(f"job config {self.config_path} is not a mapping")
        return data


def current_job(environ: Mapping[str, str] | None = None) -> JobBinding | None:
    """The job binding from ``environ`` (default ``os.environ``), or None when started by hand."""
    env = os.environ if environ is None else environ
    run_dir = env.get(_RUN_DIR)
    if not run_dir:
        return None
    job_id = env.get(_JOB_ID)
    config = env.get(_CONFIG)
    root = env.get(ROOT_VAR)
    path = Path(run_dir)
    return JobBinding(
        job_id=int(job_id) if job_id and job_id.strip().lstrip("-").isdigit() else None,
        run_dir=path,
        experiment=env.get(_EXPERIMENT) or path.parent.name,
        config_path=Path(config) if config else None,
        root=Path(root) if root else None,
    )


def default_root(environ: Mapping[str, str] | None = None) -> Path:
    """``$EXPQ_ROOT`` if set, else ``./expq-root`` in the current directory."""
    env = os.environ if environ is None else environ
    value = env.get(ROOT_VAR)
    return Path(value) if value else Path.cwd() / DEFAULT_ROOT_NAME
