"""Scale: 4 ``expq worker`` processes × 2 slots draining 5,000 trivial jobs from one queue.

Each job creates a marker file named after ``$EXPQ_JOB_ID`` with O_EXCL (the shell's noclobber), so a
job run twice fails its second run. Pass: every job done, none failed, one marker per job. The floor
is the bare Python ``Popen`` loop running the same marker command 8 at a time.
"""
from __future__ import annotations

import os
import sys
import time

from benchmarks import _expq, _peers
from benchmarks._common import Check, Config, Row, Stat, bench_main

__all__ = ["run"]

WORKERS, SLOTS = 4, 2


def _marker_command(markers: str, variable: str) -> list[str]:
    # dash and bash open a noclobber ">" with O_CREAT|O_EXCL: a second run of the same job fails
    return ["sh", "-c", f'set -C; : > "{markers}/${variable}"']


def measure_expq(cfg: Config, count: int) -> tuple[float, int]:
    directory = cfg.fresh_dir("scale-expq")
    root = directory / "root"
    markers = directory / "markers"
    markers.mkdir()
    _expq.submit(cfg, root, [f"i=range({count})"], _marker_command(str(markers), "EXPQ_JOB_ID"))
    start = time.perf_counter()
    workers = [_expq.drain(cfg, root, SLOTS, log_name=f"worker-{n}.log") for n in range(WORKERS)]
    codes = [w.wait() for w in workers]
    seconds = time.perf_counter() - start
    if any(codes):
        raise RuntimeError(f"worker exit codes {codes}")
    failed = _expq.state_count(root, "failed")
    done = _expq.state_count(root, "done")
    marks = len(os.listdir(markers))
    ok = done == count and failed == 0 and marks == count
    if not ok:
        cfg.notes.append(f"scale: {done} done, {failed} failed, {marks} markers of {count} jobs in {root}")
    return seconds, int(ok)


def run(cfg: Config) -> list[Row]:
    count = 80 if cfg.quick else 5_000
    expq: list[float] = []
    floor: list[float] = []
    verdicts: list[int] = []
    for rep in range(cfg.reps):
        for step in (("expq", "floor") if rep % 2 == 0 else ("floor", "expq")):
            if step == "expq":
                seconds, ok = measure_expq(cfg, count)
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
    return [Row(label, "jobs/s", Stat(expq), f"Popen loop, {WORKERS * SLOTS} at a time", Stat(floor),
                Check("every job done exactly once"), status="PASS" if all(verdicts) else "FAIL")]


def main(argv: list[str] | None = None) -> int:
    return bench_main("bench_scale", __doc__.splitlines()[0], run, argv)


if __name__ == "__main__":
    sys.exit(main())
