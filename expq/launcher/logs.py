"""``expq logs ID [--stderr] [-f]``: print a job's log, or follow it until the job has ended.

A job that has no log because it has not started (or never did) is not an empty log: ``logs`` says
so on stderr and exits 1, so a script can tell "nothing yet" from "printed nothing". ``-f`` waits for
a pending job to start, after saying why it waits.
"""
from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from expq._fs import NotRegular, open_for_reading
from expq.errors import ExpqError
from expq.launcher.argtypes import job_id

if TYPE_CHECKING:
    from expq.queue.spec import JobSpec
    from expq.queue.states import State
    from expq.queue.store import JobQueue

__all__ = ["register", "run", "follow"]

CHUNK = 1 << 16


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("logs", help="print (or follow) a job's stdout or stderr",
                              description="Print a job's stdout.log (or stderr.log). With -f, keep printing "
                                          "what it writes until the job has ended. A job that has not started "
                                          "has no log: that is said on stderr, with exit code 1.")
    p.add_argument("id", type=job_id, metavar="ID")
    p.add_argument("--stderr", action="store_true", help="stderr.log instead of stdout.log")
    p.add_argument("-f", "--follow", action="store_true", help="follow until the job has ended (Ctrl-C stops)")
    p.set_defaults(run=run)


def _copy(handle: BinaryIO, out: BinaryIO) -> int:
    copied = 0
    while True:
        chunk = handle.read(CHUNK)
        if not chunk:
            return copied
        out.write(chunk)
        copied += len(chunk)


def follow(path: Path, ended: Callable[[], bool], out: BinaryIO, poll: float = 0.1,
           sleep: Callable[[float], None] = time.sleep) -> None:
    """Copy ``path`` to ``out`` as it grows, until ``ended()`` and no more data.

    ``ended`` is asked before the last read, so output written just before the job ended is not lost.
    A log that does not exist yet (a pending job) is waited for.
    """
    handle: BinaryIO | None = None
    try:
        while True:
            finished = ended()
            if handle is None:
                try:
                    handle = open_for_reading(path)  # kept open while following
                except (NotRegular, IsADirectoryError):  # the job may leave anything in its log's place
                    raise ExpqError(f"{path} is not a regular file") from None
                except FileNotFoundError:
                    if finished:
                        return
                    sleep(poll)
                    continue
            if _copy(handle, out):
                out.flush()
            elif finished:
                return
            else:
                sleep(poll)
    finally:
        if handle is not None:
            handle.close()


def _no_log(queue: JobQueue, state: State, spec: JobSpec, path: Path) -> str:
    """Why a job has no log at ``path``: not started yet (with the reason ``status`` gives), or never."""
    from expq.launcher.report import Workers, record
    from expq.queue.states import State

    if state is State.PENDING:
        now = time.time()
        reason = record(queue, state, spec, Workers(queue, now), now)["reason"]
        return f"job {spec.id} has not started yet (pending{': ' + reason if reason else ''}): no {path.name} so far"
    if state is State.CANCELLED:
        return f"job {spec.id} was cancelled before it started: it has no {path.name}"
    return f"job {spec.id} ({state.value}) has no {path.name} in {path.parent}"


def run(args: argparse.Namespace) -> int:
    from expq.queue.states import FINISHED, State
    from expq.queue.store import JobQueue

    queue = JobQueue(args.root).require()
    state, spec = queue.get(args.id)
    run_paths = queue.paths.run(spec.run_dir)
    path = run_paths.stderr if args.stderr else run_paths.stdout
    out = sys.stdout.buffer
    if not args.follow:
        try:
            with open_for_reading(path) as handle:
                _copy(handle, out)
        except FileNotFoundError:
            if state is State.RUNNING:  # just started: its log is empty so far
                return 0
            raise ExpqError(_no_log(queue, state, spec, path)) from None  # exit 1: there is nothing to print
        except (NotRegular, IsADirectoryError):  # the job may leave anything in its log's place
            raise ExpqError(f"{path} is not a regular file") from None
        out.flush()
        return 0
    if state is State.PENDING and not path.exists():
        sys.stderr.write(f"expq: {_no_log(queue, state, spec, path)}; waiting for it to start (Ctrl-C stops)\n")
        sys.stderr.flush()
    try:
        follow(path, lambda: queue.state_of(args.id) in FINISHED, out)
    except KeyboardInterrupt:  # the way to stop following: not an error
        return 0
    return 0
