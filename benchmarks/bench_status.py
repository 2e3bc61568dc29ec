"""``expq status`` on a queue of 100,000 jobs: mostly done, some failed and cancelled, some pending and
running. The queue is fabricated with expq's own classes (``JobSpec``, ``QueuePaths``, ``Attempt``,
``result_record``, ``Lease``): a spec in each state directory, a run directory with ``result.json``
for every finished job, a lease for every running one. Floor: an interpreter listing the five state
directories (what any status must at least do to count)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from benchmarks._common import Check, Config, Row, Stat, bench_main, run_cmd

__all__ = ["run", "fabricate"]

# Shares of the queue per state (the rest is done).
RUNNING, PENDING, FAILED_SHARE, CANCELLED_SHARE = 8, 0.004, 0.01, 0.005


def fabricate(root: Path, total: int) -> dict[str, int]:
    """Write a queue of ``total`` jobs under ``root``; returns the count per state."""
    from expq._fs import write_file
    from expq.queue.attempts import Attempt, Outcome
    from expq.queue.lease import Lease, write_lease
    from expq.queue.result import Result
    from expq.queue.spec import JobSpec
    from expq.queue.states import State
    from expq.queue.store import JobQueue

    queue = JobQueue(root).create()
    paths = queue.paths
    pending = max(1, int(total * PENDING))
    failed = int(total * FAILED_SHARE)
    cancelled = int(total * CANCELLED_SHARE)
    done = total - RUNNING - pending - failed - cancelled
    plan = ([State.DONE] * done + [State.FAILED] * failed + [State.CANCELLED] * cancelled
            + [State.RUNNING] * RUNNING + [State.PENDING] * pending)
    now = time.time()
    start = now - 3600.0
    experiments = paths.experiments / "sweep"
    experiments.mkdir(parents=True, exist_ok=True)
    for job_id, state in enumerate(plan, start=1):
        name = f"lr={job_id % 7}_seed={job_id}"
        spec = JobSpec(id=job_id, experiment="sweep", name=name, command=("python", "train.py", "--seed", str(job_id)),
                       run_dir=f"experiments/sweep/{job_id}-{name}", cwd=str(root.parent),
                       submitted_at=start, config={"lr": job_id % 7, "seed": job_id})
        if state is State.PENDING:
            paths.pending_file(spec).parent.mkdir(parents=True, exist_ok=True)
            write_file(paths.pending_file(spec), spec.to_json(), exclusive=True)
            continue
        claim = "0be4c4" if state is State.RUNNING else ""  # a running job's file and lease name its claim
        write_file(paths.job_file(state, job_id, spec.priority, claim=claim), spec.to_json(), exclusive=True)
        started = start + job_id * 0.01
        attempt = Attempt(1, "benchhost", "benchhost-1-abcdef", started)
        if state is State.RUNNING:
            write_lease(paths, Lease(job_id, attempt, os.getpid(), 0.0, claim))
            continue
        outcome = {State.DONE: Outcome.DONE, State.FAILED: Outcome.FAILED, State.CANCELLED: Outcome.CANCELLED}[state]
        ended = Attempt(1, "benchhost", "benchhost-1-abcdef", started, outcome=outcome, finished_at=started + 1.5,
                        exit_code=0 if state is State.DONE else 1)
        run = paths.run(spec.run_dir)
        os.mkdir(run.dir)
        write_file(run.result, json.dumps(Result.of_attempt(job_id, state, ended, 50_000_000).to_dict(),
                                          separators=(",", ":")).encode(), exclusive=True)
    return {"done": done, "failed": failed, "cancelled": cancelled, "running": RUNNING, "pending": pending}


FLOOR = "import os, sys; [len(os.listdir(os.path.join(sys.argv[1], 'queue', s))) for s in " \
        "('pending', 'running', 'done', 'failed', 'cancelled')]"


def run(cfg: Config) -> list[Row]:
    total = 2_000 if cfg.quick else 100_000
    root = cfg.fresh_dir("status") / "root"
    counts = fabricate(root, total)
    table: list[float] = []
    as_json: list[float] = []
    floor: list[float] = []
    lines = 0
    run_cmd([cfg.expq, "status", "--root", str(root)], cfg)  # warm the page cache like a user's second call
    for _ in range(cfg.reps):
        start = time.perf_counter()
        out = run_cmd([cfg.expq, "status", "--root", str(root)], cfg, stdout=subprocess.PIPE)
        table.append(time.perf_counter() - start)
        lines = len(out.stdout.splitlines())
        start = time.perf_counter()
        out = run_cmd([cfg.expq, "status", "--root", str(root), "--json"], cfg, stdout=subprocess.PIPE)
        as_json.append(time.perf_counter() - start)
        if len(json.loads(out.stdout)["jobs"]) != total:
            raise RuntimeError("status --json did not list every job")
        start = time.perf_counter()
        run_cmd([cfg.python, "-c", FLOOR, str(root)], cfg)
        floor.append(time.perf_counter() - start)
    shape = ", ".join(f"{n:,} {s}" for s, n in counts.items())
    cfg.notes.append(f"status queue: {shape}; default table printed {lines} lines")
    return [
        Row(f"expq status, {total:,} jobs (summary + active jobs)", "s", Stat(table), "listdir of the 5 states",
            Stat(floor), Check("< 1 s", expq_max=1.0)),
        Row(f"expq status --json, {total:,} jobs (every job)", "s", Stat(as_json), "listdir of the 5 states",
            Stat(floor)),
    ]


def main(argv: list[str] | None = None) -> int:
    return bench_main("bench_status", __doc__.splitlines()[0], run, argv)


if __name__ == "__main__":
    sys.exit(main())
