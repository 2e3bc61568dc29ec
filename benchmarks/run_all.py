"""Every benchmark, one table: ``python -m benchmarks.run_all [--quick] [--reps N] [--markdown FILE]``.

Installs the missing Debian peers first (``EXPQ_BENCH_NO_INSTALL=1`` or ``--no-install`` skips that),
runs the benchmarks in one scratch directory (deleted at the very end, never in between: on this disk
creating files is slow for up to a minute after thousands were deleted), then prints the machine,
the table and the notes. Exit code 1 only when a benchmark broke; a missed target is a result.
"""
from __future__ import annotations

import importlib
import os
import sys
import time
from collections.abc import Sequence

from benchmarks import _peers
from benchmarks._common import Row, cleanup, create_probe, make_config, parse_args, report

__all__ = ["main", "BENCHMARKS"]

# Cheap and disk-light first; the 100,000-job queues and the 1 GiB logs last.
BENCHMARKS = ("bench_startup", "bench_dispatch", "bench_end_to_end", "bench_submit", "bench_scale",
              "bench_metrics", "bench_save", "bench_logs", "bench_status", "bench_claim", "bench_ui")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(__doc__.splitlines()[0], argv)
    cfg = make_config(args)
    try:
        _peers.ensure(cfg, install=not (args.no_install or os.environ.get("EXPQ_BENCH_NO_INSTALL") == "1"))
        rows: list[Row] = []
        probes = [f"{create_probe(cfg):.0f}"]
        for name in BENCHMARKS:
            start = time.perf_counter()
            print(f"running {name} ...", file=sys.stderr, flush=True)
            try:
                rows += importlib.import_module(f"benchmarks.{name}").run(cfg)
            except Exception as exc:  # noqa: BLE001 - one broken benchmark must not hide the others' results
                rows.append(Row(name, "", None, status=f"error: {type(exc).__name__}: {exc}"[:300]))
            print(f"  {name}: {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
            probes.append(f"{create_probe(cfg):.0f}")
        cfg.notes.append("file creation on the scratch disk before each benchmark and at the end, µs per file "
                         f"(about 10 at rest): {', '.join(probes)}")
        given = list(sys.argv[1:] if argv is None else argv)
        return report(rows, cfg, args, " ".join(["python -m benchmarks.run_all", *given]))
    finally:
        cleanup(cfg, args)


if __name__ == "__main__":
    sys.exit(main())
