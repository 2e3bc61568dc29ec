"""Binding to the queued job this process runs inside, read from the environment a worker sets.

The variable names, the run directory's file names and the root's resolution belong to
``expq.contract`` (shared with the worker); this module only adds what the experiment API
does with them: find the job, read its config with the one config dialect, find the root.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from expq._fs import adopt_root
from expq.config import load_config_file
from expq.contract import ROOT_VAR, JobEnvironment, resolve_root

__all__ = ["JobBinding", "current_job", "load_job_config", "default_root", "ROOT_VAR"]

JobBinding = JobEnvironment  # the name this package has used for a job's environment


def current_job(environ: Mapping[str, str] | None = None) -> JobEnvironment | None:
    """The job from ``environ`` (default ``os.environ``), or None when started by hand. A job of a
    root shared with a group writes its files with the group's modes, as the worker does."""
    job = JobEnvironment.read(environ)
    if job is not None:
        adopt_root(job.root)
    return job


def load_job_config(job: JobEnvironment) -> dict[str, Any]:
    """The job's resolved config (``config.yaml`` written by the worker), or ``{}`` if it has none.

    Raises:
        InputError: the file exists but cannot be read as a config mapping.
    """
    if not os.path.lexists(job.config_path):
        return {}
    return load_config_file(job.config_path, "job config")


def default_root(environ: Mapping[str, str] | None = None) -> Path:
    """``$EXPQ_ROOT`` if set, else ``./expq-root``, resolved as the CLI resolves ``--root`` (and its
    modes adopted: a shared root is written with the group's modes)."""
    root = resolve_root(None, environ)
    adopt_root(root)
    return root
