"""What every benchmark shares: the run configuration, statistics, result rows, the table, the CLI."""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Config", "Stat", "Row", "Check", "run_cmd", "timed", "render_table", "render_markdown", "create_probe",
           "machine_line", "bench_main", "which", "HEADER"]

HEADER = ("metric", "expq", "peer or floor", "ratio", "target", "pass/fail")


@dataclass
class Config:
    """One benchmark session: sizes (``quick``), repetitions, a scratch directory and the tools."""

    quick: bool
    reps: int
    workdir: Path
    python: str = sys.executable
    notes: list[str] = field(default_factory=list)
    _counter: int = 0

    @property
    def expq(self) -> str:
        """The console script next to the interpreter (the venv's), else the one on PATH."""
        beside = Path(self.python).parent / "expq"
        return str(beside) if beside.exists() else (shutil.which("expq") or "expq")

    def fresh_dir(self, label: str) -> Path:
        """A new directory per measurement: nothing is deleted between measurements, because on this
        disk creating files is slow for up to a minute after thousands were deleted."""
        self._counter += 1
        path = self.workdir / f"{self._counter:03d}-{label}"
        path.mkdir(parents=True, mode=0o755)
        return path

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of every child: the venv's bin first on PATH, worker logs at INFO."""
        env = dict(os.environ)
        env["PATH"] = f"{Path(self.python).parent}{os.pathsep}{env.get('PATH', '')}"
        env.pop("EXPQ_ROOT", None)
        env.pop("EXPQ_JOB_ID", None)
        env.pop("EXPQ_RUN_DIR", None)
        env.update(extra)
        return env


class Stat:
    """Repeated measurements of one quantity; shown as median (min-max)."""

    def __init__(self, values: Sequence[float]) -> None:
        if not values:
            raise ValueError("no measurements")
        self.values = list(values)

    @property
    def median(self) -> float:
        return statistics.median(self.values)

    @property
    def min(self) -> float:
        return min(self.values)

    @property
    def max(self) -> float:
        return max(self.values)

    def scaled(self, factor: float) -> Stat:
        return Stat([v * factor for v in self.values])

    def minus(self, other: Stat) -> Stat:
        """Pairwise difference (same repetition), e.g. a run minus its start-up."""
        return Stat([a - b for a, b in zip(self.values, other.values)])

    def fmt(self, unit: str) -> str:
        if len(self.values) == 1:
            return f"{_num(self.median)} {unit}"
        return f"{_num(self.median)} {unit} ({_num(self.min)}–{_num(self.max)})"


def _num(value: float) -> str:
    size = abs(value)
    if size >= 100_000:
        return f"{value:,.0f}"
    if size >= 100:
        return f"{value:.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


@dataclass
class Check:
    """A target: ``ratio <= limit`` (times) or ``ratio >= limit`` (throughputs), plus optional absolute
    bounds on the expq median."""

    text: str
    ratio_max: float | None = None
    ratio_min: float | None = None
    expq_max: float | None = None

    def judge(self, ratio: float | None, expq: Stat | None) -> bool:
        ok = True
        if self.ratio_max is not None:
            ok &= ratio is not None and ratio <= self.ratio_max
        if self.ratio_min is not None:
            ok &= ratio is not None and ratio >= self.ratio_min
        if self.expq_max is not None:
            ok &= expq is not None and expq.median < self.expq_max
        return ok


@dataclass
class Row:
    """One line of the table. ``ratio`` is expq / peer of the medians unless given."""

    metric: str
    unit: str
    expq: Stat | None
    peer_label: str = ""
    peer: Stat | None = None
    check: Check | None = None
    ratio: float | None = None
    ratio_label: str = ""
    status: str | None = None  # overrides the verdict: "skipped: ...", "error: ..."

    def __post_init__(self) -> None:
        if self.ratio is None and self.expq is not None and self.peer is not None and self.peer.median:
            self.ratio = self.expq.median / self.peer.median

    def cells(self) -> tuple[str, str, str, str, str, str]:
        expq = self.expq.fmt(self.unit) if self.expq is not None else "—"
        if self.peer is not None:
            peer = f"{self.peer_label}: {self.peer.fmt(self.unit)}"
        else:
            peer = self.peer_label or "—"
        ratio = f"{self.ratio:.3g}" if self.ratio is not None else "—"
        if self.ratio is not None and self.ratio_label:
            ratio += f" {self.ratio_label}"
        target = self.check.text if self.check else "—"
        if self.status is not None:
            verdict = self.status
        elif self.check is None:
            verdict = "info"
        else:
            verdict = "PASS" if self.check.judge(self.ratio, self.expq) else "FAIL"
        return self.metric, expq, peer, ratio, target, verdict

    @property
    def failed(self) -> bool:
        return self.cells()[5] == "FAIL" or (self.status or "").startswith("error")


def run_cmd(argv: Sequence[str], cfg: Config, *, env: dict[str, str] | None = None, cwd: Path | None = None,
            stdout: int | None = subprocess.DEVNULL, stderr: int | None = None,
            check: bool = True, input: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run one command; on failure raise with its stderr, so a broken benchmark never reports a time."""
    result = subprocess.run(list(argv), env=env or cfg.env(), cwd=cwd, stdout=stdout,
                            stderr=subprocess.PIPE if stderr is None else stderr, input=input)
    if check and result.returncode != 0:
        err = result.stderr.decode(errors="replace").strip()[-600:] if isinstance(result.stderr, bytes) else ""
        raise RuntimeError(f"{' '.join(argv[:6])}... exited {result.returncode}: {err}")
    return result


def timed(fn: Callable[[], object]) -> float:
    """Seconds ``fn`` takes (wall clock)."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def which(name: str) -> str | None:
    return shutil.which(name)


def create_probe(cfg: Config, count: int = 500) -> float:
    """Microseconds to create one empty file on the scratch disk now: about 10 on this ext4 at rest,
    10-20 times more for up to a minute after thousands of files were deleted (by anyone)."""
    directory = cfg.fresh_dir("probe")
    start = time.perf_counter()
    for n in range(count):
        os.close(os.open(directory / str(n), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    return (time.perf_counter() - start) / count * 1e6


def machine_line(python: str) -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    version = subprocess.run([python, "-c", "import platform; print(platform.python_version())"],
                             capture_output=True, text=True).stdout.strip() or platform.python_version()
    now = datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")
    return (f"machine: {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {model}, "
            f"Linux {platform.release()}, Python {version}, {now}")


def render_table(rows: Sequence[Row]) -> str:
    """A plain-text table with aligned columns."""
    lines = [HEADER, *(row.cells() for row in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
    out = []
    for n, line in enumerate(lines):
        out.append(" | ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip())
        if n == 0:
            out.append("-+-".join("-" * w for w in widths))
    return "\n".join(out)


def render_markdown(rows: Sequence[Row], machine: str, command: str, notes: Sequence[str] = ()) -> str:
    def esc(text: str) -> str:
        return text.replace("|", "\\|")

    out = [f"`{command}`", "", machine, "", "| " + " | ".join(HEADER) + " |",
           "|" + "---|" * len(HEADER)]
    out += ["| " + " | ".join(esc(c) for c in row.cells()) + " |" for row in rows]
    if notes:
        out += ["", *(f"- {note}" for note in notes)]
    return "\n".join(out) + "\n"


def parse_args(description: str, argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="tiny sizes and 1 repetition: a smoke run")
    parser.add_argument("--reps", type=int, default=None, help="repetitions per measurement (default 5, quick 1)")
    parser.add_argument("--markdown", metavar="FILE", help="also write the table as markdown to FILE")
    parser.add_argument("--dir", metavar="DIR", help="scratch directory (default: a new one under $TMPDIR)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument("--no-install", action="store_true",
                        help="never apt-get install the peers (also: EXPQ_BENCH_NO_INSTALL=1)")
    args = parser.parse_args(argv)
    if args.reps is None:
        args.reps = 1 if args.quick else 5
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    return args


def make_config(args: argparse.Namespace) -> Config:
    base = Path(args.dir) if args.dir else None
    if base is not None:
        base.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="expq-bench-", dir=base))
    os.chmod(workdir, 0o755)
    return Config(quick=args.quick, reps=args.reps, workdir=workdir)


def report(rows: Sequence[Row], cfg: Config, args: argparse.Namespace, command: str) -> int:
    """Print the machine line, the table and the notes; write markdown if asked; exit code 1 only
    when a benchmark broke (a missed target is a result, not an error)."""
    machine = machine_line(cfg.python)
    print(machine)
    print(render_table(rows))
    for note in cfg.notes:
        print(f"note: {note}")
    if args.markdown:
        Path(args.markdown).write_text(render_markdown(rows, machine, command, cfg.notes))
    return 1 if any((r.status or "").startswith("error") for r in rows) else 0


def cleanup(cfg: Config, args: argparse.Namespace) -> None:
    """Delete the scratch tree at the very end (deleting earlier would slow later file creation)."""
    if args.keep:
        print(f"scratch directory kept: {cfg.workdir}")
        return
    shutil.rmtree(cfg.workdir, ignore_errors=True)


def bench_main(name: str, description: str, run: Callable[[Config], list[Row]],
               argv: Sequence[str] | None = None) -> int:
    """``python -m benchmarks.<name>``: one benchmark alone, same options and table as ``run_all``."""
    from benchmarks import _peers

    args = parse_args(description, argv)
    cfg = make_config(args)
    try:
        _peers.ensure(cfg, install=not (args.no_install or os.environ.get("EXPQ_BENCH_NO_INSTALL") == "1"))
        before = create_probe(cfg)
        try:
            rows = run(cfg)
        except Exception as exc:  # noqa: BLE001 - report the broken benchmark as a row, keep the table
            rows = [Row(name, "", None, status=f"error: {type(exc).__name__}: {exc}")]
        cfg.notes.append(f"file creation on the scratch disk: {before:.0f} µs before, {create_probe(cfg):.0f} µs after "
                         "(about 10 µs at rest)")
        command = f"python -m benchmarks.{name}" + " ".join([""] + sys.argv[1:] if argv is None else [""] + list(argv))
        return report(rows, cfg, args, command.strip())
    finally:
        cleanup(cfg, args)
