"""The unread-config-key check at the end of a job (``config keys never read: lrate``).

The job's processes recorded which keys the experiment API handed out (``expq.experiment.
config_reads``); with the keys the command's placeholders read (kept in the spec), whatever is left
of the job's config was never read, most likely a mistyped key. The warning goes to ``stderr.log``
and ``result.json``; with ``submit --strict`` a job that would have succeeded fails instead.
A job that never used the experiment API recorded nothing and gets no warning.
"""
from __future__ import annotations

import dataclasses
import logging
import os

from expq.queue.attempts import Outcome
from expq.queue.paths import RunPaths
from expq.queue.result import read_result, write_result
from expq.worker.child import ExitStatus
from expq.worker.job import RunningJob

__all__ = ["check_config_reads", "add_warnings"]

log = logging.getLogger(__name__)


def check_config_reads(job: RunningJob, status: ExitStatus) -> list[str]:
    """The warnings of a job that ended by itself; under ``--strict`` a successful one is turned
    into a failure (its outcome is decided from ``job.stopping``, as for a timeout)."""
    if job.stopping is not None:
        return []
    # lazily: importing the worker must not load the experiment API (tests/test_boundaries.py)
    from expq.experiment.config_reads import recorded_reads, unread_keys, warning_text

    read = recorded_reads(job.run.dir)
    if read is None:
        return []
    unread = unread_keys(job.spec.config, read | set(job.spec.placeholders))
    if not unread:
        return []
    warning = warning_text(unread)
    try:
        fd = os.open(job.run.stderr, os.O_WRONLY | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            os.write(fd, f"expq: warning: {warning}{' (--strict: the job fails)' if job.spec.strict else ''}\n"
                     .encode())
        finally:
            os.close(fd)
    except OSError as exc:
        log.error("job %d: could not write its warning to stderr.log (%s)", job.spec.id, exc)
    if job.spec.strict and status.ok:
        job.stopping, job.stop_reason = Outcome.FAILED, f"{warning} (--strict)"
    return [warning]


def add_warnings(run: RunPaths, warnings: list[str]) -> None:
    """Add the warnings to the ``result.json`` the job's end just wrote."""
    result = read_result(run.result)
    if result is None or not warnings:
        return
    write_result(run.result, dataclasses.replace(result, warnings=tuple(warnings)))
