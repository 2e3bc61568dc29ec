"""The unread-config-key check at the end of a job (``config keys never read: lrate``).

The job's processes recorded which keys the experiment API handed out (``expq.experiment.
config_reads`` writes ``config-reads/*.json``; reading them back is here, so the worker never
imports the experiment API); with the keys the command's placeholders read (kept in the spec), whatever is left
of the job's config was never read, most likely a mistyped key. The warning goes to ``stderr.log``
and ``result.json``; with ``submit --strict`` a job that would have succeeded fails instead.
A job that never used the experiment API recorded nothing and gets no warning.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from expq._fs import NOFOLLOW
from expq.contract import CONFIG_READS_DIR
from expq.errors import InputError
from expq.queue.attempts import Outcome
from expq.queue.store import read_queue_file
from expq.worker.child import ExitStatus
from expq.worker.job import RunningJob

__all__ = ["check_config_reads", "recorded_reads", "unread_keys", "warning_text", "READS_DIR"]

READS_DIR = CONFIG_READS_DIR
_READS_LIMIT = 4 << 20  # bytes: a record of the config keys one process read

log = logging.getLogger(__name__)


def check_config_reads(job: RunningJob, status: ExitStatus) -> list[str]:
    """The warnings of a job that ended by itself; under ``--strict`` a successful one is turned
    into a failure (its outcome is decided from ``job.stopping``, as for a timeout)."""
    if job.stopping is not None:
        return []

    read = recorded_reads(job.run.dir)
    if read is None:
        return []
    unread = unread_keys(job.spec.config, read | set(job.spec.placeholders))
    if not unread:
        return []
    warning = warning_text(unread)
    try:
        # a FIFO the job left in the log's place fails at once instead of blocking the worker
        fd = os.open(job.run.stderr, os.O_WRONLY | os.O_APPEND | NOFOLLOW)
        try:
            os.write(fd, f"expq: warning: {warning}{' (--strict: the job fails)' if job.spec.strict else ''}\n"
                     .encode())
        finally:
            os.close(fd)
    except OSError as exc:
        log.error("job %d: could not write its warning to stderr.log (%s)", job.spec.id, exc)
    if job.spec.strict and status.ok:
        job.stopping, job.stop_reason = Outcome.FAILED, f"{warning} (--strict)"
    job.warnings = (warning,)
    return [warning]


def recorded_reads(run_dir: Path) -> set[str] | None:
    """The keys any process of this run recorded as read; None when none recorded anything (the
    program did not use the experiment API, so nothing can be said)."""
    try:
        names = [n for n in os.listdir(run_dir / READS_DIR) if n.endswith(".json")]
    except OSError:
        return None
    if not names:
        return None
    keys: set[str] = set()
    for name in names:
        try:  # written by the job's processes: anything may be there, a FIFO or a huge file
            data = json.loads(read_queue_file(run_dir / READS_DIR / name, limit=_READS_LIMIT)[0])
        except (OSError, InputError, ValueError, RecursionError):
            continue
        read = data.get("read") if isinstance(data, dict) else None
        if isinstance(read, list):
            keys.update(k for k in read if isinstance(k, str))
    return keys


def unread_keys(config: Mapping[str, Any], read: Iterable[str]) -> list[str]:
    """The config keys nobody read, as dotted keys, coarsest first: a mapping none of whose keys was
    read is named once (``optimizer``), one partly read names its unread keys (``model.depth``)."""
    read = set(read)
    out: list[str] = []

    def walk(node: Mapping[str, Any], prefix: str) -> None:
        for key, value in node.items():
            full = f"{prefix}{key}"
            if full in read:
                continue
            if isinstance(value, Mapping) and value and any(r.startswith(f"{full}.") for r in read):
                walk(value, f"{full}.")
            else:
                out.append(full)

    walk(config, "")
    return out


def warning_text(unread: Iterable[str]) -> str:
    return f"config keys never read: {', '.join(unread)}"
