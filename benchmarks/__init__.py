"""Benchmarks of expq against task-spooler, nq, GNU parallel and the floor (a bare Python loop).

``python -m benchmarks.run_all [--quick] [--reps N] [--markdown FILE]`` runs them all and prints one
table; each ``benchmarks.bench_*`` module also runs alone with the same options. Every figure is the
median of the repetitions (min-max beside it), and every comparison is measured side by side, in the
same run, on the same disk. Speed is never asserted by a test: ``tests/benchmarks/test_smoke.py``
only checks that the quick run completes.
"""
from __future__ import annotations

__all__: list[str] = []
