"""``expq rm`` (jobs and their run directories) and ``expq gc`` (run directories no job owns).

Both check everything before removing anything (an unknown id, a running job, a job another waits
on: exit 2, nothing removed) and take ``--dry-run`` to list what would go. The removal itself is
``expq.queue.removal``: out of the queue by one rename first, then the files.
"""
from __future__ import annotations

import argparse
import sys

from expq.launcher.argtypes import positive_seconds
from expq.launcher.selectors import job_ids

__all__ = ["register", "run_rm", "run_gc"]

_REMOVABLE = ("pending", "done", "failed", "cancelled")


def _removable_state(text: str) -> str:
    if text not in _REMOVABLE:
        raise argparse.ArgumentTypeError(f"{text!r} is not a state jobs can be removed from: expected one of "
                                         f"{', '.join(_REMOVABLE)} (running jobs: cancel them first)")
    return text


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "rm", help="remove jobs from the queue, with their run directories",
        usage="expq rm ID... | expq rm [--state S]... [--experiment E] [--older-than D] [--keep-files] [--dry-run]",
        description="Remove jobs from the queue together with their run directories. Give ids, or filters: "
                    "--state (default: done, failed and cancelled), --experiment, --older-than. Running jobs "
                    "are refused (cancel them first).")
    p.add_argument("ids", nargs="*", type=job_ids, metavar="ID", help="job ids (12, 3,4,5 or 3-40)")
    p.add_argument("--state", action="append", default=[], type=_removable_state, metavar="STATE",
                   help="only jobs in this state (repeatable): pending, done, failed, cancelled")
    p.add_argument("--experiment", metavar="NAME", help="only jobs of this experiment")
    p.add_argument("--older-than", type=positive_seconds, metavar="DURATION",
                   help="only jobs that ended (pending: were submitted) longer ago than this (7d, 12h)")
    p.add_argument("--keep-files", action="store_true", help="keep the run directories (expq gc removes them later)")
    p.add_argument("--dry-run", action="store_true", help="list what would be removed, remove nothing")
    p.set_defaults(run=run_rm)

    p = subparsers.add_parser(
        "gc", help="remove run directories that no job owns (--dry-run lists them)",
        description="Finish removals an interrupted expq rm left, then remove the run directories of queued "
                    "jobs that are no longer in the queue, stop requests of workers that are gone and their logs "
                    "after 7 days. Runs started by hand are never touched.")
    p.add_argument("--dry-run", action="store_true", help="list them, remove nothing")
    p.set_defaults(run=run_gc)


def run_rm(args: argparse.Namespace) -> int:
    from expq.errors import InputError
    from expq.fan_out import helpers_for_this_machine
    from expq.queue.removal import remove, select
    from expq.queue.states import State
    from expq.queue.store import JobQueue

    ids = list(dict.fromkeys(job for group in args.ids for job in group))
    filters = bool(args.state or args.experiment is not None or args.older_than is not None)
    if ids and filters:
        raise InputError("expq rm: give either job ids or filters (--state, --experiment, --older-than), not both")
    if not ids and not filters:
        raise InputError("expq rm: nothing to remove: give job ids or filters (--state, --experiment, --older-than)")
    queue = JobQueue(args.root).require()
    victims = select(queue, ids, [State(s) for s in args.state], args.experiment, args.older_than,
                     helpers=helpers_for_this_machine())
    if args.dry_run:
        for victim in victims:
            files = "" if args.keep_files else f" {queue.paths.run(victim.spec.run_dir).dir}"
            sys.stdout.write(f"would remove {victim.spec.id} ({victim.state.value}){files}\n")
        return 0
    removed, left = remove(queue, victims, keep_files=args.keep_files)
    sys.stdout.write("".join(f"{job}\n" for job in removed))
    sys.stdout.flush()
    for job in left:
        sys.stderr.write(f"expq: job {job} changed state meanwhile (claimed or retried); not removed\n")
    return 1 if left else 0


def run_gc(args: argparse.Namespace) -> int:
    from expq.queue.removal import finish_removals, orphan_run_dirs, remove_orphans, stale_worker_files
    from expq.queue.store import JobQueue

    queue = JobQueue(args.root).require()
    orphans = orphan_run_dirs(queue)
    stale = stale_worker_files(queue)
    if args.dry_run:
        sys.stdout.write("".join(f"would remove {path}\n" for path in [*orphans, *stale]))
        return 0
    for path in stale:
        path.unlink(missing_ok=True)
    if stale:
        sys.stderr.write(f"expq: removed {len(stale)} file(s) of workers that are gone (stop requests, old logs)\n")
    finished = finish_removals(queue)
    if finished:
        sys.stderr.write(f"expq: finished {finished} interrupted removal(s)\n")
    sys.stdout.write("".join(f"{path}\n" for path in remove_orphans(queue, orphans)))
    return 0
