"""``expq worker``: build a worker from the command-line options and run it."""
from __future__ import annotations

import argparse
import os
import sys

from expq.queue.store import JobQueue
from expq.worker.gpus import parse_gpus
from expq.worker.logfile import setup_logging
from expq.worker.loop import Worker, WorkerOptions, identity

__all__ = ["run_worker", "options_from_args"]


def options_from_args(args: argparse.Namespace) -> WorkerOptions:
    """The numbers were range-checked by the CLI's argument types; ``--gpus`` is parsed here.

    Raises:
        InputError: an invalid ``--gpus`` list.
    """
    return WorkerOptions(gpus=parse_gpus(args.gpus, timeout=args.probe_timeout), slots=args.slots,
                         drain=args.drain, max_jobs=args.max_jobs, poll=args.poll, heartbeat=args.heartbeat,
                         lease_timeout=args.lease_timeout, grace=args.grace, jobs_per_gpu=args.jobs_per_gpu,
                         foreign_mem=args.foreign_mem, ignore_foreign=args.ignore_foreign,
                         probe_timeout=args.probe_timeout)


def run_worker(args: argparse.Namespace) -> int:
    queue = JobQueue(args.root)
    who = identity(os.environ)
    # On a terminal, also a log file: the worker outlives the terminal (SIGHUP is ignored) and then
    # logs there only. A redirected stderr (--detach, SLURM) is the log file already.
    on_terminal = sys.stderr.isatty() and queue.paths.workers.is_dir()
    setup_logging(os.environ.get("EXPQ_LOG_LEVEL", "INFO"),
                  queue.paths.workers / f"{who.worker_id}.log" if on_terminal else None)
    options = options_from_args(args)  # after the log is set up: --gpus auto says there why it found no GPU
    return Worker(queue, options, who).run()
