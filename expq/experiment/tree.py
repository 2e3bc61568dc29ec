"""Where things live inside a run directory, and how new run directories get unique names.

Layout of one run directory (by hand: ``<root>/experiments/<experiment>/<run>/``; queued:
the job's run directory, made by the worker)::

    run.json              metadata: state, times, host, python, argv, git commit/dirty, config, result, error
    run.log               the run's logger; start and end of each command clearly marked
    stdout.log stderr.log fd-level capture (by hand only; in a queued job the worker writes these)
    files/<name>.<ext>    objects given to save(); a '/' in the name makes sub-folders
    metrics/<name>.csv    one line per log_scalar: ``step,value,time`` (header line first)
    sources/...           snapshot of the project's source files (root run only)
    runs/<sub-run>/       exp.run(...) inside this run, same layout, nested as deep as calls go

Files the worker owns in a queued run directory (never written here): job.json, config.yaml,
run.env, stdout.log, stderr.log, result.json, attempts/ (a job that ran more than once).
"""
from __future__ import annotations

import os
import time
from pathlib import Path, PurePosixPath

from expq import contract
from expq._fs import check_name
from expq.errors import InputError

__all__ = [
    "RUN_JSON", "RUN_LOG", "STDOUT_LOG", "STDERR_LOG", "FILES", "METRICS", "SOURCES", "RUNS",
    "JOB_JSON", "JOB_CONFIG", "RESULT_JSON", "LABELS_JSON", "EXPERIMENTS", "make_unique_dir", "timestamp_name",
    "relative_name", "is_run_dir",
]

# The names belong to the worker/API contract (expq.contract); re-exported for this package.
RUN_JSON = contract.RUN_JSON
RUN_LOG = contract.RUN_LOG
STDOUT_LOG = contract.STDOUT_LOG
STDERR_LOG = contract.STDERR_LOG
FILES = contract.FILES_DIR
METRICS = contract.METRICS_DIR
SOURCES = contract.SOURCES_DIR
RUNS = contract.RUNS_DIR
EXPERIMENTS = contract.EXPERIMENTS_DIR
# Written by the worker in a queued run directory; read here, never written.
JOB_JSON = contract.JOB_JSON
LABELS_JSON = contract.LABELS_JSON
JOB_CONFIG = contract.CONFIG_YAML
RESULT_JSON = contract.RESULT_JSON

_MAX_TRIES = 10_000


def timestamp_name(now: float | None = None) -> str:
    """A sortable, readable local timestamp such as ``2026-11-27_06-54-27``."""
    return time.strftime("%Y-%m-%d_%H-%M-%S", time.localtime(time.time() if now is None else now))


def make_unique_dir(parent: Path, base: str) -> Path:
    """Create ``parent/base``, or ``base-1``, ``base-2``, ... with an exclusive mkdir; return it.

    ``mkdir`` either creates the directory or fails, so any number of processes racing on the
    same base name each end with a distinct directory (sacred's ``_make_run_dir`` loop).

    Raises:
        InputError: ``base`` is not a safe name.
    """
    check_name("run", base)
    parent.mkdir(parents=True, exist_ok=True)
    for index in range(_MAX_TRIES):
        candidate = parent / (base if index == 0 else f"{base}-{index}")
        try:
            candidate.mkdir()
        except FileExistsError:
            continue
        return candidate
    raise InputError(f"could not create a unique directory for {base!r} in {parent}")  # pragma: no cover


def relative_name(kind: str, name: str) -> PurePosixPath:
    """Check a user-given name that may hold sub-folders (``plots/loss``) and return it as a path.

    Raises:
        InputError: empty, absolute, ``..``/``.`` or hidden component, NUL or control characters.
    """
    if not isinstance(name, str) or not name:
        raise InputError(f"invalid {kind} name {name!r}: must not be empty")
    if name.startswith("/") or "\\" in name:
        raise InputError(f"invalid {kind} name {name!r}: must be relative and use '/' between folders")
    parts = name.split("/")
    for part in parts:
        check_name(kind, part)
    return PurePosixPath(*parts)


def is_run_dir(path: Path) -> bool:
    """True if ``path`` holds a run: written by this API (run.json) or by a worker (job.json/result.json)."""
    return any(os.path.exists(path / marker) for marker in contract.RUN_MARKERS)
