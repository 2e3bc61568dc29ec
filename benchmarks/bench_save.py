"""Saving: ``exp.save(array)`` of a 100 MB float64 array vs ``numpy.save`` of it to the same disk,
three alternating writes of each per process (a repetition's figure is their median), ``sync`` before
each write, each file deleted after its measurement. Both write into the page cache: neither side fsyncs."""
from __future__ import annotations

import subprocess
import sys

from benchmarks._common import Check, Config, Row, Stat, bench_main, run_cmd

__all__ = ["run", "SCRIPT"]

SCRIPT = r"""
import os, sys, time
import numpy as np
import expq
size, directory, first = int(sys.argv[1]), sys.argv[2], sys.argv[3]
array = np.random.default_rng(0).random(size // 8)
exp = expq.Experiment("save", root=directory, capture_output=False, sources=False)
times = {"expq": [], "numpy": []}
for mode in ((first, "numpy" if first == "expq" else "expq") * 3):
    os.sync()  # start each side with no dirty pages from the other's write, so neither pays its writeback
    start = time.perf_counter()
    if mode == "numpy":
        path = os.path.join(directory, "plain.npy")
        np.save(path, array)
    else:
        path = exp.save(array, "array")
    times[mode].append(time.perf_counter() - start)
    assert os.path.getsize(path) >= size, path
    os.unlink(path)
exp.close()
print(sorted(times["expq"])[1], sorted(times["numpy"])[1])  # the median of three alternating writes
"""


def run(cfg: Config) -> list[Row]:
    size = (8 << 20) if cfg.quick else 100_000_000
    mb = size / 1e6
    expq: list[float] = []
    plain: list[float] = []
    for rep in range(cfg.reps):
        directory = cfg.fresh_dir("save")
        out = run_cmd([cfg.python, "-c", SCRIPT, str(size), str(directory), "expq" if rep % 2 == 0 else "numpy"],
                      cfg, stdout=subprocess.PIPE)
        t_expq, t_numpy = map(float, out.stdout.decode().split()[-2:])
        expq.append(mb / t_expq)
        plain.append(mb / t_numpy)
    return [Row(f"exp.save of a {mb:g} MB float64 array", "MB/s", Stat(expq), "numpy.save", Stat(plain),
                Check("≥ 0.9 × numpy.save", ratio_min=0.9))]


def main(argv: list[str] | None = None) -> int:
    return bench_main("bench_save", __doc__.splitlines()[0], run, argv)


if __name__ == "__main__":
    sys.exit(main())
