"""``expq slurm start|list|stop``: expq workers as a SLURM job array serving one root.

Imports nothing heavy at module level (``expq --help`` builds this parser); the SLURM calls live in
``expq.launcher.slurm`` and are imported when a sub-command runs.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["register", "run"]



def register(subparsers: Any) -> None:
    """Add ``slurm`` with its actions ``start``, ``list`` and ``stop``."""
    from expq.launcher.cli import ROOT_HELP  # cli is loaded by now: it is the one calling register

    parser = subparsers.add_parser(
        "slurm", help="start, list and stop expq workers as a SLURM job array",
        description="Run expq workers as SLURM jobs: one job array whose tasks each run `expq worker --gpus auto` "
                    "against this root (which must be on a filesystem the compute nodes share).")
    actions = parser.add_subparsers(title="actions", dest="slurm_action", metavar="ACTION", required=True)

    p = actions.add_parser(
        "start", help="submit N workers as one job array",
        description="Write an sbatch script into ROOT/slurm/ and submit it as one job array of N workers; print "
                    "the SLURM job id. Each worker exits once nothing is runnable (--drain), and on the "
                    "time-limit warning or scancel re-queues its jobs without spending a retry.")
    p.add_argument("--workers", type=int, required=True, metavar="N", help="array tasks, one worker each")
    p.add_argument("--gpus-per-worker", type=int, default=0, metavar="G", help="--gres=gpu:G per task (default 0)")
    p.add_argument("--slots-per-worker", type=int, metavar="S",
                   help="jobs each worker runs at once (default: one per GPU, 1 without GPUs)")
    p.add_argument("--partition", metavar="P", help="SLURM partition")
    p.add_argument("--time", metavar="T", help="time limit per task (SLURM format: minutes, HH:MM:SS, D-HH:MM)")
    p.add_argument("--cpus-per-worker", type=int, metavar="C", help="--cpus-per-task per worker")
    p.add_argument("--mem", metavar="M", help="memory per worker (SLURM --mem, e.g. 32G)")
    p.add_argument("--signal-lead", type=int, default=120, metavar="SECONDS",
                   help="ask SLURM for SIGUSR1 this long before the time limit (default 120)")
    p.add_argument("--grace", type=float, metavar="SECONDS",
                   help="the workers' --grace between SIGTERM and SIGKILL of a job (default: half the "
                        "cluster's KillWait, at most 30; 10 when KillWait cannot be read)")
    p.add_argument("--lease-timeout", type=float, default=300.0, metavar="SECONDS",
                   help="the workers' --lease-timeout: a worker on another node silent this long is presumed "
                        "dead (default 300, above NFS's attribute caching)")
    p.add_argument("--no-drain", dest="drain", action="store_false",
                   help="keep workers waiting for jobs until their time limit (default: exit when idle)")
    p.add_argument("--sbatch-arg", dest="sbatch_args", action="append", default=[], metavar="ARG",
                   help="an extra sbatch option, value included (repeatable): --sbatch-arg=--account=proj")
    p.add_argument("--dry-run", action="store_true", help="print the script; write and submit nothing")
    _add_root(p, ROOT_HELP)

    p = actions.add_parser("list", help="the expq workers in squeue and in ROOT/queue/workers",
                           description="One line per worker task of this root in squeue (pending ones too) and "
                                       "per live worker registered in ROOT/queue/workers, with its running jobs.")
    p.add_argument("--json", action="store_true", help="as JSON")
    _add_root(p, ROOT_HELP)

    p = actions.add_parser(
        "stop", help="stop this root's SLURM workers; their running jobs are re-queued",
        description="Stop worker tasks (default: every expq worker task of this root). A running worker gets "
                    "SIGTERM alone (scancel --batch): it re-queues its jobs without spending a retry and exits. "
                    "Pending tasks are cancelled.")
    p.add_argument("ids", nargs="*", metavar="SLURM_JOB_ID", help="array job (123) or task (123_4) ids")
    p.add_argument("--force", action="store_true",
                   help="scancel outright: SIGTERM to workers and jobs at once, SIGKILL after KillWait")
    _add_root(p, ROOT_HELP)


def _add_root(parser: argparse.ArgumentParser, help_text: str) -> None:
    # SUPPRESS: without it here, a --root given before `slurm` would be overwritten by None
    parser.add_argument("--root", default=argparse.SUPPRESS, metavar="DIR", help=help_text)


def run(args: argparse.Namespace) -> int:
    handlers = {"start": _start, "list": _list, "stop": _stop}
    return handlers[args.slurm_action](args)


# -- start ----------------------------------------------------------------------------------------

def _start(args: argparse.Namespace) -> int:
    from expq.launcher import slurm

    root = Path(args.root)
    kill_wait = slurm.kill_wait()
    array = slurm.WorkerArray(
        root=root, workers=args.workers, gpus_per_worker=args.gpus_per_worker, slots_per_worker=args.slots_per_worker,
        partition=args.partition, time=args.time, cpus_per_worker=args.cpus_per_worker, mem=args.mem,
        signal_lead=args.signal_lead, drain=args.drain,
        grace=args.grace if args.grace is not None else slurm.default_grace(kill_wait),
        lease_timeout=args.lease_timeout, sbatch_args=tuple(args.sbatch_args), python=_python())
    slurm.validate(array, kill_wait)
    now = time.time()
    if args.dry_run:
        sys.stdout.write(slurm.script(array, None, now, kill_wait))
        return 0
    slurm.require_tool("sbatch")  # before anything is written
    from expq.queue.store import JobQueue

    queue = JobQueue(root)
    if queue.exists():
        queue.check_secure()
    queue.create()
    slurm.logs_dir(root).mkdir(parents=True, exist_ok=True)
    path = _new_script_path(root / "slurm", now)
    try:
        path.write_text(slurm.script(array, path, now, kill_wait))
        job_id = slurm.submit(path)
    except BaseException:
        path.unlink(missing_ok=True)  # never submitted: leave nothing that looks like it was
        raise
    sys.stdout.write(f"{job_id}\n")
    sys.stdout.flush()
    sys.stderr.write(f"expq: submitted {array.workers} worker(s) as SLURM array job {job_id}; script {path}; "
                     f"logs {slurm.logs_dir(root)}/{job_id}_<task>.out\n")
    return 0


def _python() -> str:
    """The interpreter the workers run: this one, by its absolute path (a venv's python keeps its venv)."""
    return os.path.abspath(sys.executable)


def _new_script_path(directory: Path, now: float) -> Path:
    """``workers-<date>-<time>.sbatch``, created exclusively (a second start in the same second gets -2)."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    for n in range(1, 1000):
        path = directory / (f"workers-{stamp}.sbatch" if n == 1 else f"workers-{stamp}-{n}.sbatch")
        try:
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
        except FileExistsError:
            continue
        return path
    raise FileExistsError(f"no free script name in {directory}")


# -- list -----------------------------------------------------------------------------------------

def _user() -> str:
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name


def _list(args: argparse.Namespace) -> int:
    from expq.launcher import slurm

    root = Path(args.root)
    tasks = [t for t in slurm.list_tasks(_user()) if slurm.belongs_to(t, root)]
    workers = _live_workers(root, time.time())
    rows = _join(tasks, workers)
    if args.json:
        sys.stdout.write(json.dumps({"version": 1, "root": str(root), "workers": rows}, indent=2) + "\n")
    elif rows:
        sys.stdout.write(_table(rows))
    else:
        sys.stderr.write(f"expq: no expq workers of {root} in squeue or in its queue\n")
    return 0


def _live_workers(root: Path, now: float) -> list[dict[str, Any]]:
    """Worker records from ``queue/workers/`` whose owner is alive, each with its running job ids."""
    from expq._fs import read_json_object
    from expq.queue.paths import QueuePaths
    from expq.queue.workers import live_workers

    paths = QueuePaths(root)
    running: dict[str, list[int]] = {}
    for path in sorted(paths.leases.glob("*.json")):
        lease = read_json_object(path) or {}
        attempt, job = lease.get("attempt"), lease.get("job_id")
        worker = attempt.get("worker_id") if isinstance(attempt, dict) else None
        if isinstance(worker, str) and isinstance(job, int):
            running.setdefault(worker, []).append(job)
    workers = live_workers(paths, now)
    for info in workers:
        info["jobs"] = sorted(running.get(str(info.get("worker_id")), []))
    return workers


def _join(tasks: list[Any], workers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per SLURM task (with its worker once it runs), then workers no listed task owns."""
    by_task = {str(w.get("slurm_job") or ""): w for w in workers}
    rows = []
    for task in tasks:
        worker = by_task.pop(task.job_id, None)
        rows.append({"slurm_job": task.job_id, "state": task.state, "node": task.node or None,
                     "reason": task.reason if task.state == "PENDING" else None, "time": task.elapsed,
                     "limit": task.limit, **_worker_fields(worker)})
    for worker in by_task.values():
        rows.append({"slurm_job": worker.get("slurm_job") or None, "state": None, "node": worker.get("host"),
                     "reason": None, "time": None, "limit": None, **_worker_fields(worker)})
    return rows


def _worker_fields(worker: dict[str, Any] | None) -> dict[str, Any]:
    if worker is None:
        return {"worker_id": None, "host": None, "gpus": None, "jobs": []}
    return {"worker_id": worker.get("worker_id"), "host": worker.get("host"), "gpus": worker.get("gpus"),
            "jobs": worker.get("jobs", [])}


def _table(rows: list[dict[str, Any]]) -> str:
    header = ["SLURM", "STATE", "NODE", "TIME", "LIMIT", "WORKER", "GPUS", "JOBS"]
    lines = [header]
    for row in rows:
        node = row["node"] or (f"({row['reason']})" if row["reason"] else "-")
        gpus = ",".join(str(g) for g in row["gpus"]) if row["gpus"] else "-"
        lines.append([row["slurm_job"] or "-", row["state"] or "-", node, row["time"] or "-", row["limit"] or "-",
                      row["worker_id"] or "-", gpus, ",".join(str(j) for j in row["jobs"]) or "-"])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "".join("  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip() + "\n" for line in lines)


# -- stop -----------------------------------------------------------------------------------------

def _stop(args: argparse.Namespace) -> int:
    from expq.errors import InputError
    from expq.launcher import slurm

    root = Path(args.root)
    tasks = [t for t in slurm.list_tasks(_user()) if slurm.belongs_to(t, root)]
    if args.ids:
        for wanted in args.ids:
            if not any(t.matches(wanted) for t in tasks):
                raise InputError(f"no expq worker job {wanted} of {root} in squeue (see 'expq slurm list')")
        tasks = [t for t in tasks if any(t.matches(wanted) for wanted in args.ids)]
    if not tasks:
        sys.stderr.write(f"expq: no expq workers of {root} in squeue\n")
        return 0
    for task, what in slurm.stop_tasks(tasks, args.force):
        sys.stdout.write(f"{task.job_id} {what}\n")
    return 0
