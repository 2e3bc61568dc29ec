"""Start-up: ``python -c "import expq"`` and ``expq --help`` vs ``python -c pass``, all with the venv's
interpreter. With hyperfine (no shell, warm-up runs) each repetition is one hyperfine call running the
three commands; without it, a loop that interleaves them. A repetition's figure is the median of its
runs; the table shows the median over repetitions of the time above the bare interpreter."""
from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time

from benchmarks import _peers
from benchmarks._common import Check, Config, Row, Stat, bench_main, run_cmd

__all__ = ["run"]


def _commands(cfg: Config) -> dict[str, list[str]]:
    return {"bare": [cfg.python, "-c", "pass"], "import": [cfg.python, "-c", "import expq"],
            "help": [cfg.expq, "--help"]}


def _hyperfine(cfg: Config, commands: dict[str, list[str]], runs: int) -> dict[str, float]:
    out = cfg.fresh_dir("startup") / "hyperfine.json"
    argv = ["hyperfine", "-N", "--warmup", "3", "--runs", str(runs), "--export-json", str(out),
            *(shlex.join(c) for c in commands.values())]
    run_cmd(argv, cfg)
    results = json.loads(out.read_text())["results"]
    return {key: sorted(r["times"])[len(r["times"]) // 2] for key, r in zip(commands, results)}


def _loop(cfg: Config, commands: dict[str, list[str]], runs: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {key: [] for key in commands}
    env = cfg.env()
    for n in range(runs + 3):
        for key, argv in commands.items():
            start = time.perf_counter()
            subprocess.run(argv, env=env, stdout=subprocess.DEVNULL, check=True)
            if n >= 3:  # warm-up
                samples[key].append(time.perf_counter() - start)
    return {key: sorted(v)[len(v) // 2] for key, v in samples.items()}


def run(cfg: Config) -> list[Row]:
    commands = _commands(cfg)
    runs = 5 if cfg.quick else 30
    measure = _hyperfine if _peers.have("hyperfine") else _loop
    per_rep = [measure(cfg, commands, runs) for _ in range(cfg.reps)]
    bare = Stat([r["bare"] for r in per_rep]).scaled(1000.0)
    tool = "hyperfine" if measure is _hyperfine else "timing loop"
    cfg.notes.append(f"start-up measured with {tool}, {runs} runs per command per repetition; "
                     f"bare interpreter {bare.fmt('ms')}")
    rows = []
    for key, label, limit in (("import", 'python -c "import expq", above python -c pass', 60.0),
                              ("help", "expq --help, above python -c pass", 120.0)):
        above = Stat([r[key] - r["bare"] for r in per_rep]).scaled(1000.0)
        rows.append(Row(label, "ms", above, "python -c pass", bare, Check(f"< {limit:g} ms above", expq_max=limit),
                        ratio=Stat([r[key] for r in per_rep]).median / Stat([r["bare"] for r in per_rep]).median,
                        ratio_label="(total/bare)"))
    return rows


def main(argv: list[str] | None = None) -> int:
    return bench_main("bench_startup", __doc__.splitlines()[0], run, argv)


if __name__ == "__main__":
    sys.exit(main())
