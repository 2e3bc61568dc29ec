"""Log capture: a job writing 1 GiB to stdout through expq (the worker hands the job its log file)
vs the same command redirected to a file by the shell.

Both time the write inside the job itself (``date +%s%N`` around ``head -c``), so the interpreter and
worker start-up are not counted on either side; throughput is bytes / that time. Each output file is
deleted right after its measurement (single big files, not thousands of small ones), ``sync`` runs
before each measurement, and the two sides alternate which goes first.
"""
from __future__ import annotations

import os
import re
import sys

from benchmarks import _expq
from benchmarks._common import Check, Config, Row, Stat, bench_main, run_cmd

__all__ = ["run"]

_MARK = re.compile(rb"BENCH_NS (\d+)")


def _script(size: int, redirect: str = "") -> str:
    return (f"t0=$(date +%s%N); head -c {size} /dev/zero{redirect}; t1=$(date +%s%N); "
            "echo BENCH_NS $((t1 - t0)) >&2")


def measure_expq(cfg: Config, size: int) -> float:
    root = cfg.fresh_dir("logs-expq") / "root"
    _expq.submit(cfg, root, [], ["sh", "-c", _script(size)])
    os.sync()  # no dirty pages left from the other side's write: neither pays the other's writeback
    _expq.drain_seconds(cfg, root, 1)
    _expq.check_all_done(root, 1)
    (run_dir,) = [p for p in (root / "experiments").glob("*/*") if p.is_dir()]
    stdout = run_dir / "stdout.log"
    written = stdout.stat().st_size
    os.unlink(stdout)
    if written < size:
        raise RuntimeError(f"stdout.log holds {written} bytes, expected {size}")
    return _seconds((run_dir / "stderr.log").read_bytes())


def measure_shell(cfg: Config, size: int) -> float:
    directory = cfg.fresh_dir("logs-shell")
    out = directory / "stdout.log"
    os.sync()
    result = run_cmd(["sh", "-c", _script(size, f" > '{out}'") + f" 2> '{directory / 'stderr.log'}'; "
                      f"cat '{directory / 'stderr.log'}' >&2"], cfg)
    written = out.stat().st_size
    os.unlink(out)
    if written != size:
        raise RuntimeError(f"shell wrote {written} bytes, expected {size}")
    return _seconds(result.stderr)


def _seconds(text: bytes) -> float:
    found = _MARK.findall(text)
    if not found:
        raise RuntimeError(f"no BENCH_NS line in the job's stderr: {text[-300:]!r}")
    return int(found[-1]) / 1e9


def run(cfg: Config) -> list[Row]:
    size = (32 << 20) if cfg.quick else (1 << 30)
    mib = size / (1 << 20)
    expq: list[float] = []
    shell: list[float] = []
    for rep in range(cfg.reps):
        for step in (("expq", "shell") if rep % 2 == 0 else ("shell", "expq")):
            if step == "expq":
                expq.append(mib / measure_expq(cfg, size))
            else:
                shell.append(mib / measure_shell(cfg, size))
    label = f"log capture, job writes {'1 GiB' if size == 1 << 30 else f'{mib:g} MiB'} to stdout"
    return [Row(label, "MiB/s", Stat(expq), "shell > file", Stat(shell), Check("≥ 0.95 × shell", ratio_min=0.95))]


def main(argv: list[str] | None = None) -> int:
    return bench_main("bench_logs", __doc__.splitlines()[0], run, argv)


if __name__ == "__main__":
    sys.exit(main())
