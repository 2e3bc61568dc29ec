"""Metrics: ``exp.log_scalar`` calls per second (including the final flush to disk) vs the floor, a plain
buffered ``f.write`` of one CSV line per call, and with live TensorBoard event files on vs off. All run
in fresh interpreters, one after the other."""
from __future__ import annotations

import subprocess
import sys

from benchmarks._common import Check, Config, Row, Stat, bench_main, run_cmd

__all__ = ["run", "SCRIPT"]

SCRIPT = r"""
import os, sys, time
count, directory, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
if mode == "floor":
    with open(os.path.join(directory, "floor.csv"), "w") as f:
        write = f.write
        start = time.perf_counter()
        for i in range(count):
            write(f"{i},{i * 0.5}\n")
        f.flush()
        seconds = time.perf_counter() - start
else:
    import expq
    exp = expq.Experiment("metrics", root=directory, capture_output=False, sources=False,
                          tensorboard=mode == "tensorboard")
    log_scalar = exp.log_scalar
    start = time.perf_counter()
    for i in range(count):
        log_scalar("loss", i * 0.5)
    exp.flush()
    seconds = time.perf_counter() - start
    points = len(exp.load_scalar("loss")) if count <= 100_000 else count
    assert points == count, f"{points} of {count} points read back"
    exp.close()
print(seconds)
"""


def measure(cfg: Config, count: int, mode: str) -> float:
    directory = cfg.fresh_dir(f"metrics-{mode}")
    out = run_cmd([cfg.python, "-c", SCRIPT, str(count), str(directory), mode], cfg, stdout=subprocess.PIPE)
    return count / float(out.stdout.decode().split()[-1])


def run(cfg: Config) -> list[Row]:
    count = 20_000 if cfg.quick else 1_000_000
    rates: dict[str, list[float]] = {"expq": [], "floor": [], "tensorboard": []}
    for rep in range(cfg.reps):
        order = list(rates) if rep % 2 == 0 else list(reversed(rates))
        for mode in order:
            rates[mode].append(measure(cfg, count, mode))
    return [Row(f"exp.log_scalar, {count:,} calls + flush", "calls/s", Stat(rates["expq"]), "f.write of a line",
                Stat(rates["floor"]), Check("≥ 0.25 × floor", ratio_min=0.25)),
            Row(f"exp.log_scalar with live TensorBoard files, {count:,} calls + flush", "calls/s",
                Stat(rates["tensorboard"]), "log_scalar without", Stat(rates["expq"]),
                Check("≥ 0.5 × without", ratio_min=0.5))]


def main(argv: list[str] | None = None) -> int:
    return bench_main("bench_metrics", __doc__.splitlines()[0], run, argv)


if __name__ == "__main__":
    sys.exit(main())
