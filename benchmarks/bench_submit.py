"""Submitting a 10,000-job sweep with one ``expq submit`` vs task-spooler queueing commands one client
call each (behind a blocker job, so nothing runs while they are queued).

task-spooler keeps one waiting client process and one server connection per queued job; its server
multiplexes them with select(), so past ~990 queued jobs a client call blocks until a job finishes
(seen here: the 995th call never returned). So tsp is measured queueing
800 commands and its time scaled to 10,000 (the table says so)."""
from __future__ import annotations

import sys
import time

from benchmarks import _expq, _peers
from benchmarks._common import Check, Config, Row, Stat, bench_main

__all__ = ["run"]


def measure_expq(cfg: Config, side: int) -> float:
    root = cfg.fresh_dir("submit-expq") / "root"
    start = time.perf_counter()
    _expq.submit(cfg, root, [f"a=range({side})", f"b=range({side})"], ["echo", "{a}", "{b}"])
    seconds = time.perf_counter() - start
    if _expq.state_count(root, "pending") != side * side:
        raise RuntimeError(f"expected {side * side} pending jobs, found {_expq.state_count(root, 'pending')}")
    return seconds


TSP_MAX = 800  # safely below the ~990 queued jobs one tsp server can hold (select() on 1024 fds)


def measure_tsp(cfg: Config, count: int, side: int) -> float:
    directory = cfg.fresh_dir("submit-tsp")
    tsp = _peers.Tsp(cfg, directory)
    blocker = _peers.Blocker(directory)
    try:
        tsp.set_slots(1)
        tsp.add(blocker.command)
        start = time.perf_counter()
        for n in range(count):
            tsp.add(["echo", str(n // side), str(n % side)])
        return time.perf_counter() - start
    finally:
        tsp.close()  # kills the queued jobs with the server; the blocker dies with it
        blocker.release_quietly()


def run(cfg: Config) -> list[Row]:
    side = 10 if cfg.quick else 100
    count = side * side
    tsp_count = min(count, TSP_MAX)
    expq: list[float] = []
    tsp: list[float] = []
    for rep in range(cfg.reps):
        order = ("expq", "tsp") if rep % 2 == 0 else ("tsp", "expq")
        for step in order:
            if step == "expq":
                expq.append(measure_expq(cfg, side))
            elif _peers.have("tsp"):
                tsp.append(measure_tsp(cfg, tsp_count, side) * count / tsp_count)
    label = f"submit a {count:,}-job sweep (one expq submit)"
    limit = 2.0  # fixed: in --quick the interpreter's start-up dominates and the ratio means little
    if not tsp:
        return [Row(label, "s", Stat(expq), "tsp", check=Check(f"< {limit:g} s", expq_max=limit),
                    status=None)]
    peer = f"tsp, {count:,} client calls" if tsp_count == count else \
        f"tsp, {tsp_count:,} client calls scaled ×{count / tsp_count:g}"
    return [Row(label, "s", Stat(expq), peer, Stat(tsp),
                Check(f"< {limit:g} s and ≤ 0.05 × tsp", ratio_max=0.05, expq_max=limit))]


def main(argv: list[str] | None = None) -> int:
    return bench_main("bench_submit", __doc__.splitlines()[0], run, argv)


if __name__ == "__main__":
    sys.exit(main())
