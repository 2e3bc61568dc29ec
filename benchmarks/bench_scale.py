"""Scale: many ``expq worker`` processes draining one queue, every job exactly once.

Each job creates a marker file named after ``$EXPQ_JOB_ID`` with O_EXCL (the shell's noclobber), so a
job run twice fails its second run. Pass: every job done, none failed, one marker per job.

4 workers × 2 slots drain 5,000 trivial jobs; the floor is the bare Python ``Popen`` loop running the
same marker command 8 at a time. Then 32 workers × 8 slots and 8 workers × 32 slots drain 2,560
one-second jobs (``sleep 1`` after the marker): throughput as a fraction of the ideal (every slot busy
from the start: jobs × 1 s / slots), once with nothing else pending and once beside 100,000 GPU jobs
that these ``--gpus none`` workers cannot take (the same two queues serve every repetition; the GPU
jobs stay pending).
"""
from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from benchmarks import _expq, _peers
from benchmarks._common import Check, Config, Row, Stat, bench_main

__all__ = ["run"]

WORKERS, SLOTS = 4, 2
EXACTLY_ONCE = Check("every job done exactly once")


def _marker_command(markers: str, variable: str, seconds: float = 0.0) -> list[str]:
    # dash and bash open a noclobber ">" with O_CREAT|O_EXCL: a second run of the same job fails
    sleep = f" && sleep {seconds:g}" if seconds else ""
    return ["sh", "-c", f'set -C; : > "{markers}/${variable}"{sleep}']


def measure_expq(cfg: Config, root: Path, count: int, workers: int, slots: int,
                 seconds: float = 0.0) -> tuple[float, int]:
    """Queue ``count`` marker jobs into ``root`` (which may hold earlier ones) and drain them with
    ``workers`` × ``slots``; (wall seconds, 1 if every job ran exactly once)."""
    markers = cfg.fresh_dir("scale-markers")
    done_before, failed_before = _expq.state_count(root, "done"), _expq.state_count(root, "failed")
    _expq.submit(cfg, root, [f"i=range({count})"], _marker_command(str(markers), "EXPQ_JOB_ID", seconds))
    start = time.perf_counter()
    processes = [_expq.drain(cfg, root, slots, log_name=f"worker-{n}.log") for n in range(workers)]
    codes = [p.wait() for p in processes]
    wall = time.perf_counter() - start
    if any(codes):
        raise RuntimeError(f"worker exit codes {codes}")
    failed = _expq.state_count(root, "failed") - failed_before
    done = _expq.state_count(root, "done") - done_before
    marks = len(os.listdir(markers))
    ok = done == count and failed == 0 and marks == count
    if not ok:
        cfg.notes.append(f"scale: {done} done, {failed} failed, {marks} markers of {count} jobs in {root}")
    return wall, int(ok)


def _verdict(verdicts: list[int]) -> str:
    return "PASS" if all(verdicts) else "FAIL"


def trivial_jobs(cfg: Config) -> Row:
    count = 80 if cfg.quick else 5_000
    expq: list[float] = []
    floor: list[float] = []
    verdicts: list[int] = []
    for rep in range(cfg.reps):
        for step in (("expq", "floor") if rep % 2 == 0 else ("floor", "expq")):
            if step == "expq":
                seconds, ok = measure_expq(cfg, cfg.fresh_dir("scale-expq") / "root", count, WORKERS, SLOTS)
                expq.append(count / seconds)
                verdicts.append(ok)
            else:
                directory = cfg.fresh_dir("scale-floor")
                (directory / "markers").mkdir()
                (directory / "runs").mkdir()
                seconds = _peers.floor_seconds(cfg, directory / "runs", count, WORKERS * SLOTS,
                                               _marker_command(str(directory / "markers"), "JOB_ID"))
                floor.append(count / seconds)
    label = (f"scale: {WORKERS} workers × {SLOTS} slots, {count:,} jobs "
             f"(exactly once in {sum(verdicts)}/{len(verdicts)} reps)")
    return Row(label, "jobs/s", Stat(expq), f"Popen loop, {WORKERS * SLOTS} at a time", Stat(floor),
               EXACTLY_ONCE, status=_verdict(verdicts))


def slot_shapes(cfg: Config) -> list[Row]:
    """Many slots on one queue, with and without a backlog no worker can run."""
    shapes = ((4, 2), (2, 4)) if cfg.quick else ((32, 8), (8, 32))
    count, seconds, backlog = (16, 0.2, 500) if cfg.quick else (2_560, 1.0, 100_000)
    empty = cfg.fresh_dir("scale-empty") / "root"
    blocked = cfg.fresh_dir("scale-backlog") / "root"
    _expq.submit(cfg, blocked, [f"i=range({backlog})"], ["true"], ["--gpus", "1"])
    queues = {"nothing else pending": empty, f"beside {backlog:,} pending GPU jobs": blocked}
    cases = [(shape, queue) for shape in shapes for queue in queues]
    rates: dict[tuple[tuple[int, int], str], list[float]] = {case: [] for case in cases}
    verdicts: dict[tuple[tuple[int, int], str], list[int]] = {case: [] for case in cases}
    slots_in_all = shapes[0][0] * shapes[0][1]
    floor: list[float] = []
    for rep in range(cfg.reps):
        for case in (cases if rep % 2 == 0 else cases[::-1]):
            (workers, slots), queue = case
            wall, ok = measure_expq(cfg, queues[queue], count, workers, slots, seconds)
            rates[case].append(count / wall)
            verdicts[case].append(ok)
        directory = cfg.fresh_dir("scale-floor-slots")
        (directory / "markers").mkdir()
        (directory / "runs").mkdir()
        floor.append(count / _peers.floor_seconds(cfg, directory / "runs", count, slots_in_all,
                                                  _marker_command(str(directory / "markers"), "JOB_ID", seconds)))
    # What the jobs themselves cost bounds every shape: a bare Popen loop keeping the same slots busy.
    rows = [Row(f"scale: Popen loop, {slots_in_all} at a time, {count:,} × sleep {seconds:g} (floor)", "jobs/s",
                Stat(floor), f"ideal, {slots_in_all} slots busy", Stat([slots_in_all / seconds]),
                ratio_label="of ideal")]
    for case in cases:
        (workers, slots), queue = case
        ideal = workers * slots / seconds
        label = (f"scale: {workers} workers × {slots} slots, {count:,} × sleep {seconds:g}, {queue} "
                 f"(exactly once in {sum(verdicts[case])}/{len(verdicts[case])} reps)")
        rows.append(Row(label, "jobs/s", Stat(rates[case]), f"ideal, {workers * slots} slots busy", Stat([ideal]),
                        EXACTLY_ONCE, ratio_label="of ideal", status=_verdict(verdicts[case])))
    return rows


def run(cfg: Config) -> list[Row]:
    return [trivial_jobs(cfg), *slot_shapes(cfg)]


def main(argv: list[str] | None = None) -> int:
    return bench_main("bench_scale", __doc__.splitlines()[0], run, argv)


if __name__ == "__main__":
    sys.exit(main())
