"""End to end: submit N trivial jobs and run them all, timed from the first client call to the last job.

expq: one ``expq submit --sweep i=range(N) -- true`` (how users submit) then ``expq worker --drain``.
task-spooler: N ``tsp true`` client calls to a server already set to S slots, then wait for all.
nq: N ``nq true`` calls, then ``nq -w`` (one slot). GNU parallel: ``parallel -j S true ::: 1..N``.
"""
from __future__ import annotations

import sys
import time

from benchmarks import _expq, _peers
from benchmarks._common import Check, Config, Row, Stat, bench_main

__all__ = ["run"]

SLOTS = (1, 2)


def measure_expq(cfg: Config, count: int, slots: int) -> float:
    root = cfg.fresh_dir(f"e2e-expq-{slots}") / "root"
    start = time.perf_counter()
    _expq.submit(cfg, root, [f"i=range({count})"], ["true"])
    worker = _expq.drain(cfg, root, slots)
    if worker.wait() != 0:
        raise RuntimeError(f"expq worker exited {worker.returncode}")
    seconds = time.perf_counter() - start
    _expq.check_all_done(root, count)
    return seconds


def measure_tsp(cfg: Config, count: int, slots: int) -> float:
    tsp = _peers.Tsp(cfg, cfg.fresh_dir(f"e2e-tsp-{slots}"))
    try:
        tsp.set_slots(slots)  # starts the server, untimed
        start = time.perf_counter()
        for _ in range(count):
            tsp.add(["true"])
        tsp.wait_all()
        return time.perf_counter() - start
    finally:
        tsp.close()


def measure_nq(cfg: Config, count: int) -> float:
    nq = _peers.Nq(cfg, cfg.fresh_dir("e2e-nq"))
    start = time.perf_counter()
    for _ in range(count):
        nq.add(["true"])
    nq.wait_all()
    return time.perf_counter() - start


def run(cfg: Config) -> list[Row]:
    count = 20 if cfg.quick else 500
    ms = 1000.0 / count
    peers = [name for name, tool in (("tsp", "tsp"), ("parallel", "parallel")) if _peers.have(tool)]
    times: dict[tuple[str, int], list[float]] = {}
    nq: list[float] = []
    for rep in range(cfg.reps):
        for slots in SLOTS:
            steps = ["expq", *peers]
            steps = steps[rep % len(steps):] + steps[:rep % len(steps)]
            for step in steps:
                if step == "expq":
                    seconds = measure_expq(cfg, count, slots)
                elif step == "tsp":
                    seconds = measure_tsp(cfg, count, slots)
                else:
                    seconds = _peers.parallel_run(cfg, slots, count)
                times.setdefault((step, slots), []).append(seconds)
        if _peers.have("nq"):
            nq.append(measure_nq(cfg, count))

    rows = []
    for slots in SLOTS:
        expq = Stat(times[("expq", slots)]).scaled(ms)
        label = f"end to end {count} × true, {slots} slot{'s' if slots > 1 else ''}"
        if ("tsp", slots) in times:
            rows.append(Row(label, "ms/job", expq, f"tsp -S {slots}", Stat(times[("tsp", slots)]).scaled(ms),
                            Check("≤ 1.0 × tsp", ratio_max=1.0)))
        else:
            rows.append(Row(label, "ms/job", expq, "tsp", status="skipped: tsp not installed"))
        if ("parallel", slots) in times:
            rows.append(Row(f"{label}, vs GNU parallel", "ms/job", expq, f"parallel -j{slots}",
                            Stat(times[("parallel", slots)]).scaled(ms)))
        if slots == 1 and nq:
            rows.append(Row(f"{label}, vs nq", "ms/job", expq, "nq", Stat(nq).scaled(ms)))
    return rows


def main(argv: list[str] | None = None) -> int:
    return bench_main("bench_end_to_end", __doc__.splitlines()[0], run, argv)


if __name__ == "__main__":
    sys.exit(main())
