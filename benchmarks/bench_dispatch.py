"""Dispatch overhead: N trivial jobs (``true``), queued first (untimed), then drained.

expq: ``expq worker --gpus none --slots S --drain`` timed from process start to exit; the same
worker on the drained (now empty) queue is timed right after, and the difference is the figure
"without start-up". task-spooler: the jobs are queued behind a blocker job holding the only slot;
the clock starts at ``tsp -S S`` plus the blocker's release and stops when every job has finished.
nq (one slot only): the same blocker trick. Floor: a bare Python ``Popen`` loop with a fresh directory
and two log files per job, timed inside its process.
"""
from __future__ import annotations

import sys
import time

from benchmarks import _expq, _peers
from benchmarks._common import Check, Config, Row, Stat, bench_main

__all__ = ["run", "measure_tsp", "measure_nq"]

SLOTS = (1, 2)


def _count(cfg: Config) -> int:
    return 20 if cfg.quick else 500


def measure_expq(cfg: Config, count: int, slots: int) -> tuple[float, float]:
    """(seconds of the whole worker run, seconds of a worker run on the drained queue)."""
    directory = cfg.fresh_dir(f"dispatch-expq-{slots}")
    root = directory / "root"
    _expq.submit(cfg, root, [f"i=range({count})"], ["true"])
    seconds = _expq.drain_seconds(cfg, root, slots)
    _expq.check_all_done(root, count)
    empty = _expq.drain_seconds(cfg, root, slots)
    return seconds, empty


def measure_tsp(cfg: Config, count: int, slots: int) -> float:
    directory = cfg.fresh_dir(f"dispatch-tsp-{slots}")
    tsp = _peers.Tsp(cfg, directory)
    try:
        tsp.set_slots(1)
        blocker = _peers.Blocker(directory)
        tsp.add(blocker.command)
        for _ in range(count):
            tsp.add(["true"])
        start = time.perf_counter()
        if slots != 1:
            tsp.set_slots(slots)
        blocker.release()
        tsp.wait_all()
        seconds = time.perf_counter() - start
        if count + 1 <= 1000 and tsp.finished() != count + 1:  # tsp keeps the last 1000 finished
            raise RuntimeError(f"tsp finished {tsp.finished()} of {count + 1} jobs")
        return seconds
    finally:
        tsp.close()


def measure_nq(cfg: Config, count: int) -> float:
    directory = cfg.fresh_dir("dispatch-nq")
    nq = _peers.Nq(cfg, directory)
    blocker = _peers.Blocker(directory)
    nq.add(blocker.command)
    for _ in range(count):
        nq.add(["true"])
    start = time.perf_counter()
    blocker.release()
    nq.wait_all()
    return time.perf_counter() - start


def run(cfg: Config) -> list[Row]:
    count = _count(cfg)
    ms = 1000.0 / count
    expq: dict[int, list[float]] = {s: [] for s in SLOTS}
    empty: dict[int, list[float]] = {s: [] for s in SLOTS}
    tsp: dict[int, list[float]] = {s: [] for s in SLOTS}
    floor: dict[int, list[float]] = {s: [] for s in SLOTS}
    nq: list[float] = []
    has_tsp, has_nq = _peers.have("tsp"), _peers.have("nq")
    for rep in range(cfg.reps):
        for slots in SLOTS:
            steps = ["expq", "tsp", "floor"]
            steps = steps[rep % 3:] + steps[:rep % 3]  # rotate the order: no one always goes first
            for step in steps:
                if step == "expq":
                    seconds, idle = measure_expq(cfg, count, slots)
                    expq[slots].append(seconds)
                    empty[slots].append(idle)
                elif step == "tsp" and has_tsp:
                    tsp[slots].append(measure_tsp(cfg, count, slots))
                elif step == "floor":
                    floor[slots].append(_peers.floor_seconds(cfg, cfg.fresh_dir("dispatch-floor"), count, slots))
        if has_nq:
            nq.append(measure_nq(cfg, count))

    rows = []
    for slots in SLOTS:
        whole = Stat(expq[slots]).scaled(ms)
        net = Stat(expq[slots]).minus(Stat(empty[slots])).scaled(ms)
        label = f"dispatch {count} × true, {slots} slot{'s' if slots > 1 else ''}"
        target = Check("≤ 1.0 × tsp", ratio_max=1.0)
        if tsp[slots]:
            peer = Stat(tsp[slots]).scaled(ms)
            rows.append(Row(f"{label}: worker start to exit", "ms/job", whole, f"tsp -S {slots}", peer, target))
            rows.append(Row(f"{label}: without worker start-up", "ms/job", net, f"tsp -S {slots}", peer, target))
        else:
            rows.append(Row(f"{label}: worker start to exit", "ms/job", whole, "tsp", None, target,
                            status="skipped: tsp not installed"))
        rows.append(Row(f"{label}: without start-up, vs floor", "ms/job", net, "Popen loop + logs",
                        Stat(floor[slots]).scaled(ms)))
        if slots == 1 and nq:
            rows.append(Row(f"{label}: worker start to exit, vs nq", "ms/job", whole, "nq", Stat(nq).scaled(ms)))
    rows.append(Row("dispatch: worker start-up + exit on an empty queue", "ms", Stat(empty[1]).scaled(1000.0)))
    return rows


def main(argv: list[str] | None = None) -> int:
    return bench_main("bench_dispatch", __doc__.splitlines()[0], run, argv)


if __name__ == "__main__":
    sys.exit(main())
