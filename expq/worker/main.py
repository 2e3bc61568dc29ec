"""``expq worker``: set up the log, resolve the GPUs, run a worker (the CLI hands over typed options)."""
from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

from expq.queue.store import JobQueue
from expq.worker.gpus import parse_gpus
from expq.worker.logfile import setup_logging
from expq.worker.loop import Worker, WorkerOptions, identity

__all__ = ["run_worker", "resolve_gpus"]


def resolve_gpus(gpus: str, options: WorkerOptions) -> WorkerOptions:
    """``options`` with the GPUs that ``--gpus`` (``auto``, ``none`` or ids) names on this host.

    Raises:
        InputError: an invalid list, or a GPU this host does not have.
    """
    return dataclasses.replace(options, gpus=parse_gpus(gpus, timeout=options.probe_timeout))


def run_worker(root: Path, gpus: str, options: WorkerOptions) -> int:
    """Serve ``root`` until stopped; ``gpus`` is resolved once the log is set up (``auto`` says there
    why it found no GPU)."""
    queue = JobQueue(root)
    who = identity(os.environ)
    # On a terminal, also a log file: the worker outlives the terminal (SIGHUP is ignored) and then
    # logs there only. A redirected stderr (--detach, SLURM) is the log file already.
    on_terminal = sys.stderr.isatty() and queue.paths.workers.is_dir()
    setup_logging(os.environ.get("EXPQ_LOG_LEVEL", "INFO"),
                  queue.paths.workers / f"{who.worker_id}.log" if on_terminal else None)
    return Worker(queue, resolve_gpus(gpus, options), who).run()
