"""Claiming beside a backlog: one worker's dispatch time per trivial job while 300, 10,000 or 100,000
jobs it cannot run are pending; idle workers, ``expq cancel`` and ``expq status --json`` on such a queue.

Two kinds of backlog, one queue per kind and size, each submitted once and used by every repetition
(in turn, the order rotating): GPU-blocked (``--gpus 1``; every worker here runs with ``--gpus none``)
and dependency-blocked (``--after`` one GPU job, which therefore never runs). Behind the backlog 300
``true`` jobs are queued, and one ``expq worker --drain --gpus none --slots 1 --max-jobs 300`` is
timed from start to exit (``--max-jobs``: a draining worker stays while jobs wait for dependencies,
as they may become its).

On the largest GPU backlog: the CPU time (utime + stime from /proc) of one idle worker and of 16
(no ``--drain``) over 10 s, measured once they have settled; ``expq cancel`` of 100 of its pending ids;
``expq status --json``, timed, and its peak RSS (``RUSAGE_CHILDREN`` of a small interpreter that
runs it), both against the smallest backlog; ``expq status --experiment`` (every spec read for its
experiment), timed; ``expq wait --experiment`` on the whole backlog: its CPU over 30 s once it has
picked the jobs and settled. Like ``bench_status``, the timed runs follow one
untimed run (a user's second call): the first one reads 100,000 spec files that the submit wrote
minutes before, which this machine's memory reclaim may have evicted meanwhile; its time is printed
as a note.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks import _expq
from benchmarks._common import Check, Config, Row, Stat, bench_main, run_cmd

__all__ = ["run", "Backlog", "cpu_seconds"]

GPU, AFTER = "GPU-blocked", "dependency-blocked"
EXPERIMENT = "default"  # the backlog's, as submitted without --experiment
SETTLE_LIMIT = 60.0  # seconds: past this, idle workers are measured as they are, with a note

# Runs a command with stdout to a file and prints its wall seconds and peak RSS (KiB). A child's peak
# RSS starts from its parent's RSS at the fork, so the command is forked by this small interpreter,
# not by the benchmark (which holds a 100,000-job listing by then).
PEAK_SCRIPT = r"""
import resource, subprocess, sys, time
with open(sys.argv[1], "wb") as out:
    start = time.perf_counter()
    code = subprocess.call(sys.argv[2:], stdout=out)
    seconds = time.perf_counter() - start
print(seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
sys.exit(code)
"""


def cpu_seconds(pids: Sequence[int]) -> float:
    """CPU time these processes and their reaped children used so far (utime, stime, cutime, cstime)."""
    ticks = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        ticks += sum(int(field) for field in fields[11:15])
    return ticks / os.sysconf("SC_CLK_TCK")


class Backlog:
    """One queue of ``size`` jobs no ``--gpus none`` worker can run (plus, dependency-blocked, the GPU
    job they wait for)."""

    def __init__(self, cfg: Config, kind: str, size: int) -> None:
        self.cfg = cfg
        self.kind = kind
        self.size = size
        self.root = cfg.fresh_dir(f"claim-{kind}-{size}") / "root"
        options = ["--gpus", "1"]
        if kind == AFTER:
            options = ["--after", str(_expq.submit(cfg, self.root, [], ["true"], options)[0])]
        self.ids = _expq.submit(cfg, self.root, [f"i=range({size})"], ["true"], options)  # still pending
        self.jobs = len(self.ids) + (kind == AFTER)  # every job submitted
        self.done = 0

    def drain_ms(self, count: int) -> float:
        """Milliseconds per job for one worker to run ``count`` ``true`` jobs queued behind the backlog."""
        self.jobs += len(_expq.submit(self.cfg, self.root, [f"t=range({count})"], ["true"]))
        seconds = _expq.drain_seconds(self.cfg, self.root, 1, "--max-jobs", str(count))
        self.done += count
        _expq.check_all_done(self.root, self.done)
        return seconds / count * 1000.0

    def status_json(self) -> tuple[float, float]:
        """``expq status --json``: (wall seconds, peak RSS in MiB); it must list every job."""
        out = self.root.parent / "status.json"
        result = run_cmd([self.cfg.python, "-c", PEAK_SCRIPT, str(out), self.cfg.expq, "status", "--root",
                          str(self.root), "--json"], self.cfg, stdout=subprocess.PIPE)
        seconds, kib = result.stdout.split()
        listed = len(json.loads(out.read_bytes())["jobs"])
        if listed != self.jobs:
            raise RuntimeError(f"expq status --json listed {listed} of {self.jobs} jobs")
        return float(seconds), int(kib) / 1024.0

    def status_experiment(self) -> float:
        """Wall seconds of ``expq status --experiment`` of the backlog's experiment (the table)."""
        start = time.perf_counter()
        out = run_cmd([self.cfg.expq, "status", "--root", str(self.root), "--experiment", EXPERIMENT], self.cfg,
                      stdout=subprocess.PIPE)
        seconds = time.perf_counter() - start
        if f"({self.jobs:,} matching of" not in out.stdout.decode() and f"(total {self.jobs:,})" not in out.stdout.decode():
            raise RuntimeError(f"expq status --experiment did not count {self.jobs:,} jobs: {out.stdout[:300]!r}")
        return seconds

    def idle_cpu(self, workers: int, seconds: float) -> float:
        """CPU time of ``workers`` idle workers over ``seconds`` once settled, in % of one core."""
        processes = [_expq.worker(self.cfg, self.root, 1, log_name=f"idle-{n}.log") for n in range(workers)]
        try:
            return self._cpu_percent([p.pid for p in processes], seconds)
        finally:
            for process in processes:
                process.terminate()
            codes = [p.wait() for p in processes]
            if any(codes):
                raise RuntimeError(f"idle worker exit codes {codes}; see {self.root.parent}/idle-*.log")

    def wait_cpu(self, seconds: float) -> float:
        """CPU time of ``expq wait --experiment`` on the backlog over ``seconds`` once it has picked the
        jobs and settled, in % of one core."""
        process = subprocess.Popen([self.cfg.expq, "wait", "--root", str(self.root), "--experiment", EXPERIMENT],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=self.cfg.env())
        try:
            return self._cpu_percent([process.pid], seconds)
        finally:
            process.terminate()
            process.wait()

    def _cpu_percent(self, pids: Sequence[int], seconds: float) -> float:
        self._settle(pids)
        used, start = cpu_seconds(pids), time.perf_counter()
        time.sleep(seconds)
        return (cpu_seconds(pids) - used) / (time.perf_counter() - start) * 100.0

    def _settle(self, pids: Sequence[int]) -> None:
        """Wait until the workers are past their start-up (imports, the first listing of the queue):
        two seconds in a row under half a core in total."""
        start = time.perf_counter()
        before, calm = cpu_seconds(pids), 0
        while calm < 2:
            time.sleep(1.0)
            now = cpu_seconds(pids)
            used, before = now - before, now
            calm = calm + 1 if used < 0.5 else 0
            if calm < 2 and time.perf_counter() - start > SETTLE_LIMIT:
                self.cfg.notes.append(f"claim: {len(pids)} idle worker(s) still used {used:.2f} s of CPU per second "
                                      f"after {SETTLE_LIMIT:g} s; measured as they were")
                return

    def cancel_seconds(self, count: int) -> float:
        """Wall time of one ``expq cancel`` of the last ``count`` pending ids of the backlog."""
        ids, self.ids = self.ids[-count:], self.ids[:-count]
        before = _expq.state_count(self.root, "cancelled")
        start = time.perf_counter()
        run_cmd([self.cfg.expq, "cancel", "--root", str(self.root), *map(str, ids)], self.cfg)
        seconds = time.perf_counter() - start
        if _expq.state_count(self.root, "cancelled") != before + count:
            raise RuntimeError(f"expq cancel did not cancel {count} jobs in {self.root}")
        return seconds


def run(cfg: Config) -> list[Row]:
    sizes = (30, 100, 300) if cfg.quick else (300, 10_000, 100_000)
    trivial, idle_seconds, many, cancel = (20, 1.0, 4, 10) if cfg.quick else (300, 10.0, 16, 100)
    backlogs = [Backlog(cfg, kind, size) for kind in (GPU, AFTER) for size in sizes]
    small, big = backlogs[0], backlogs[len(sizes) - 1]  # the GPU-blocked ones
    claim: dict[tuple[str, int], list[float]] = {(b.kind, b.size): [] for b in backlogs}
    status: dict[int, list[tuple[float, float]]] = {small.size: [], big.size: []}
    for rep in range(cfg.reps):
        turn = rep % len(backlogs)
        for backlog in backlogs[turn:] + backlogs[:turn]:
            claim[backlog.kind, backlog.size].append(backlog.drain_ms(trivial))
    first = [(backlog.jobs, backlog.status_json()[0]) for backlog in (small, big)]  # untimed: warms the caches
    for rep in range(cfg.reps):
        for backlog in ((small, big) if rep % 2 == 0 else (big, small)):
            status[backlog.size].append(backlog.status_json())
    cfg.notes.append("status --json, first (untimed) run: "
                     + ", ".join(f"{jobs:,} jobs {seconds:.2f} s" for jobs, seconds in first))
    one = Stat([big.idle_cpu(1, idle_seconds) for _ in range(cfg.reps)])
    cores = len(os.sched_getaffinity(0))
    together = Stat([big.idle_cpu(many, idle_seconds) / cores for _ in range(cfg.reps)])
    cancelled = Stat([big.cancel_seconds(cancel) for _ in range(cfg.reps)])
    by_experiment = Stat([big.status_experiment() for _ in range(cfg.reps)])
    wait_seconds = 3 * idle_seconds  # a look every 4 s or so: a longer window, less the luck of how many fall in it
    waiting = Stat([big.wait_cpu(wait_seconds) for _ in range(cfg.reps)])

    rows = []
    for kind in (GPU, AFTER):
        base = Stat(claim[kind, sizes[0]])
        for size in sizes:
            label = f"claim: {trivial} × true beside {size:,} {kind} jobs, worker start to exit"
            if size == sizes[0]:
                rows.append(Row(label, "ms/job", base))
            else:
                rows.append(Row(label, "ms/job", Stat(claim[kind, size]), f"beside {sizes[0]:,}", base))
    rows += [
        Row(f"1 idle worker beside {big.size:,} GPU-blocked jobs: CPU over {idle_seconds:g} s", "% of a core", one,
            check=Check("< 1% of a core", expq_max=1.0)),
        Row(f"{many} idle workers beside {big.size:,} GPU-blocked jobs: CPU together", f"% of {cores} CPUs", together,
            check=Check("< 10% of the machine", expq_max=10.0)),
        Row(f"expq cancel of {cancel} pending ids, {big.size:,} GPU-blocked jobs", "s", cancelled,
            check=Check("< 0.2 s", expq_max=0.2)),
        Row(f"expq status --experiment, {big.jobs:,} jobs (every spec read)", "s", by_experiment),
        Row(f"expq wait --experiment, {big.jobs:,} jobs ({big.size - cancel * cfg.reps:,} pending): CPU over "
            f"{wait_seconds:g} s",
            "% of a core", waiting, check=Check("< 5% of a core", expq_max=5.0)),
        Row(f"expq status --json, {big.jobs:,} jobs ({big.size:,} pending)", "s",
            Stat([t for t, _ in status[big.size]]), f"{small.jobs:,} jobs", Stat([t for t, _ in status[small.size]]),
            Check("< 2 s", expq_max=2.0)),
        Row(f"expq status --json, {big.jobs:,} jobs: peak RSS", "MiB", Stat([m for _, m in status[big.size]]),
            f"{small.jobs:,} jobs", Stat([m for _, m in status[small.size]]),
            Check("flat: ≤ 1.5 × the small queue", ratio_max=1.5)),
    ]
    return rows


def main(argv: list[str] | None = None) -> int:
    return bench_main("bench_claim", __doc__.splitlines()[0], run, argv)


if __name__ == "__main__":
    sys.exit(main())
