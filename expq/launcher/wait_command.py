"""``expq wait ID...|--experiment NAME [--timeout D]``: block until jobs end, with a progress line.

Exit 0 when every job is done; 1 when one failed, was cancelled or removed, or the timeout ran
out first; 2 for an unknown id or an experiment without jobs. The progress line is the one of
``submit --wait`` (how many ended, run and wait, and why the next one waits).
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, TextIO

from expq.launcher.argtypes import positive_seconds
from expq.launcher.selectors import job_ids

if TYPE_CHECKING:
    from expq.queue.store import JobQueue

__all__ = ["register", "run", "wait_jobs"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "wait", help="block until jobs end; exit 0 if all are done",
        description="Wait until the jobs end, with a progress line on stderr. Exit 0 if all are done, 1 if one "
                    "failed, was cancelled or removed, or the timeout ran out.")
    p.add_argument("ids", nargs="*", type=job_ids, metavar="ID", help="job ids (12, 3,4,5 or 3-40)")
    p.add_argument("--experiment", action="append", default=[], metavar="NAME",
                   help="every job of this experiment queued so far (repeatable)")
    p.add_argument("--timeout", type=positive_seconds, default=None, metavar="DURATION",
                   help="give up after this long (90, 2h30m, 1d): exit 1")
    p.set_defaults(run=run)


_IDLE_PER_LOOK = 24  # seconds asleep per second spent looking: the wait costs at most 4% of a core


def wait_jobs(queue: JobQueue, ids: list[int], timeout: float | None, stream: TextIO,
              interval: float = 0.5) -> int:
    """Redraw the progress line until every job in ``ids`` ended or left the queue, or ``timeout``
    seconds pass; returns the exit code (see the module docstring)."""
    from expq.launcher.render import progress_line, waiting_text
    from expq.launcher.report import waiting
    tty = stream.isatty()
    deadline = None if timeout is None else time.monotonic() + timeout
    last = ""
    while True:
        looked_at = time.monotonic()
        now = waiting(queue, ids)
        states = [s.value for s in now.ended.values()]
        finished = len(now.ended) + len(now.gone) >= len(ids)
        expired = not finished and deadline is not None and time.monotonic() >= deadline
        line = progress_line(states.count("done"), states.count("failed"), states.count("cancelled"), len(ids),
                             waiting=waiting_text(now))
        if expired:
            line += f"; timed out after {timeout:g} s"
        if line != last:
            stream.write(f"\r{line}\x1b[K" if tty else f"{line}\n")
            stream.flush()
            last = line
        if finished or expired:
            if tty:
                stream.write("\n")
            return 0 if finished and not now.gone and all(s == "done" for s in states) else 1
        # A look costs its listing: on a queue of 100,000 jobs it would keep a core busy every 0.5 s.
        pause = max(interval, (time.monotonic() - looked_at) * _IDLE_PER_LOOK)
        time.sleep(pause if deadline is None else max(0.0, min(pause, deadline - time.monotonic())))


def run(args: argparse.Namespace) -> int:
    from expq.errors import InputError, NotFound
    from expq.fan_out import helpers_for_this_machine
    from expq.queue.selection import jobs_of_experiment
    from expq.queue.store import JobQueue

    queue = JobQueue(args.root).require()
    given = [job for group in args.ids for job in group]
    queue.check_ids_exist(given)  # an experiment's jobs were just found: only the ids given are looked up
    ids = list(given)
    for name in args.experiment:
        found = jobs_of_experiment(queue, name, helpers=helpers_for_this_machine())
        if not found:
            raise NotFound("experiment with queued jobs", name)
        ids += found
    ids = list(dict.fromkeys(ids))  # in the order given, each once
    if not ids:
        raise InputError("nothing to wait for: give job ids or --experiment NAME")
    try:
        return wait_jobs(queue, ids, args.timeout, sys.stderr)
    except KeyboardInterrupt:  # stop watching; the jobs go on
        sys.stderr.write("\nexpq: stopped waiting; the jobs go on (see expq status)\n")
        return 130
