"""``expq workers``: the live workers of every host; ``expq workers stop ID|--host H|--all``.

Stopping writes a request file into the queue (``queue/stop/<worker id>``); the worker acts on it at
its next heartbeat exactly as on SIGTERM (stop claiming, stop its jobs gracefully, requeue them,
exit 0). No ssh and no signal to another host's pid: the queue directory is the only channel.
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Any

__all__ = ["register", "run", "worker_rows"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "workers", help="live workers on every host; 'workers stop' stops them gracefully",
        usage="expq workers [--json] | expq workers stop (ID... | --host HOST | --all)",
        description="List the live workers of this root on every host: id, host, pid, slots, GPUs, running jobs, "
                    "start and last heartbeat. 'expq workers stop' asks workers to stop gracefully (their jobs are "
                    "requeued), through a file in the queue.")
    p.add_argument("--json", action="store_true", help="as JSON")
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    stop = actions.add_parser("stop", help="ask workers to stop gracefully; running jobs are requeued",
                              usage="expq workers stop (ID... | --host HOST | --all)",
                              description="Ask workers to stop at their next heartbeat, as on SIGTERM.")
    stop.add_argument("ids", nargs="*", metavar="ID", help="worker ids as 'expq workers' lists them (or a unique prefix)")
    stop.add_argument("--host", metavar="HOST", help="every live worker on this host")
    stop.add_argument("--all", action="store_true", help="every live worker")
    stop.add_argument("--root", default=argparse.SUPPRESS, metavar="DIR", help="the expq root (see expq --help)")
    p.set_defaults(run=run)


def worker_rows(root: Any, now: float | None = None) -> list[dict[str, Any]]:
    """One record per live worker, with its running jobs and the age of its last heartbeat."""
    import os

    from expq.queue.store import JobQueue
    from expq.queue.workers import jobs_by_worker, live_workers

    queue = JobQueue(root).require()
    now = time.time() if now is None else now
    jobs = jobs_by_worker(queue.paths)
    rows = []
    for info in live_workers(queue.paths, now):
        worker_id = str(info.get("worker_id", ""))
        try:
            beat: float | None = os.stat(queue.paths.worker_file(worker_id)).st_mtime
        except OSError:
            beat = None
        rows.append({"worker_id": worker_id, "host": info.get("host"), "pid": info.get("pid"),
                     "slots": info.get("slots"), "gpus": info.get("gpus") or [], "jobs": jobs.get(worker_id, []),
                     "started_at": info.get("started_at"), "heartbeat_at": beat,
                     "slurm_job": info.get("slurm_job") or None})
    return rows


def _table(rows: list[dict[str, Any]], now: float) -> str:
    from expq.launcher.render import duration

    header = ("ID", "HOST", "PID", "SLOTS", "GPUS", "JOBS", "STARTED", "HEARTBEAT")
    lines = [header]
    for row in rows:
        started = row["started_at"]
        lines.append((row["worker_id"], str(row["host"]), str(row["pid"]), str(row["slots"]),
                      ",".join(map(str, row["gpus"])) or "-", ",".join(map(str, row["jobs"])) or "-",
                      time.strftime("%Y-%m-%d %H:%M", time.localtime(started)) if isinstance(started, (int, float))
                      else "-",
                      f"{duration(max(0.0, now - row['heartbeat_at']))} ago" if row["heartbeat_at"] else "-"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() + "\n" for line in lines)


def _chosen(rows: list[dict[str, Any]], args: argparse.Namespace) -> list[str]:
    from expq.errors import InputError, NotFound

    given = sum(bool(x) for x in (args.ids, args.host, args.all))
    if given != 1:
        raise InputError("expq workers stop: give worker ids, --host HOST or --all (one of them)")
    if args.all:
        return [row["worker_id"] for row in rows]
    if args.host:
        chosen = [row["worker_id"] for row in rows if row["host"] == args.host]
        if not chosen:
            raise NotFound("live worker on host", args.host)
        return chosen
    chosen = []
    for wanted in args.ids:
        matches = [row["worker_id"] for row in rows if row["worker_id"] == wanted] or \
                  [row["worker_id"] for row in rows if row["worker_id"].startswith(wanted)]
        if not matches:
            raise NotFound("live worker", wanted)
        if len(matches) > 1:
            raise InputError(f"worker id {wanted!r} is ambiguous: {', '.join(matches[:5])}")
        chosen.append(matches[0])
    return list(dict.fromkeys(chosen))


def run(args: argparse.Namespace) -> int:
    from expq.launcher.render import to_json
    from expq.queue.store import JobQueue
    from expq.queue.workers import request_stop

    now = time.time()
    rows = worker_rows(args.root, now)
    if args.action == "stop":
        chosen = _chosen(rows, args)
        request_stop(JobQueue(args.root).paths, chosen)
        sys.stdout.write("".join(f"{worker_id}\n" for worker_id in chosen))
        if chosen:
            sys.stderr.write(f"expq: asked {len(chosen)} worker(s) to stop at their next heartbeat; "
                             "their running jobs are requeued\n")
        return 0
    sys.stdout.write(to_json({"version": 1, "workers": rows}) if args.json else _table(rows, now))
    return 0
