"""Smoke runs of the benchmarks, so the scripts never rot: tiny sizes, one repetition, and no
assertion on speed (speed is measured by ``python -m benchmarks.run_all``, never by a test).

The apt installs are disabled (``EXPQ_BENCH_NO_INSTALL=1``); peers that are not installed are
skipped by the benchmarks themselves, which the second test checks with a PATH that has none.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HEADER = "metric | expq | peer or floor | ratio | target | pass/fail"


def _run(args: list[str], tmp_path: Path, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "EXPQ_BENCH_NO_INSTALL": "1"}
    env.pop("EXPQ_ROOT", None)
    if path is not None:
        env["PATH"] = path
    return subprocess.run([sys.executable, "-m", *args, "--quick", "--reps", "1", "--dir", str(tmp_path)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=240)


def _squeezed(text: str) -> str:
    """The table pads its columns; compare the header with single spaces."""
    return "\n".join(" ".join(line.split()) for line in text.splitlines())


def test_run_all_quick_prints_the_table(tmp_path: Path) -> None:
    markdown = tmp_path / "table.md"
    result = _run(["benchmarks.run_all", "--markdown", str(markdown)], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert HEADER in _squeezed(result.stdout)
    assert "machine:" in result.stdout
    assert "| metric | expq |" in markdown.read_text()
    assert not list(tmp_path.glob("expq-bench-*")), "the scratch directory was not cleaned up"
    # the scale shapes each ran every job exactly once; the claim rows cover every backlog (one run:
    # run_all is the slowest test of the suite, the benchmarks are not run again one by one)
    rows = _squeezed(result.stdout)
    assert rows.count("(exactly once in 1/1 reps)") == 5, rows
    assert rows.count("of ideal") == 5, rows  # four slot shapes and their floor
    for kind in ("GPU-blocked", "dependency-blocked"):
        assert rows.count(f"{kind} jobs, worker start to exit") == 3, rows
    for metric in ("1 idle worker", "idle workers", "expq cancel of", "expq status --json", "peak RSS"):
        assert metric in rows, metric


def test_missing_peers_are_skipped(tmp_path: Path) -> None:
    # A PATH with the few tools the jobs themselves use, and no tsp, nq, parallel or hyperfine.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("sh", "true", "head", "date", "cat", "env"):
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    for module in ("benchmarks.bench_dispatch", "benchmarks.bench_startup"):
        result = _run([module], scratch, path=str(bin_dir))
        assert result.returncode == 0, result.stdout + result.stderr
        assert HEADER in _squeezed(result.stdout)
    assert "skipped" in result.stdout or "timing loop" in result.stdout

