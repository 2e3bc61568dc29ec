"""The command line as a whole: cancel/retry output, exit codes, start-up imports, ``python -m expq``,
``submit --wait``, the worker command's options, and an end-to-end run with a real worker."""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import types
from collections.abc import Callable
from pathlib import Path

import pytest

from expq.launcher.cli import COMMAND_MODULES, build_parser, main, named_command
from expq.queue.states import State
from expq.queue.store import JobQueue

HEAVY = ("numpy", "matplotlib", "psutil", "filelock", "yaml")


def expq(*argv: str, timeout: float = 60, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "expq", *argv], capture_output=True, text=True, timeout=timeout,
                          **kwargs)  # type: ignore[call-overload]


def cli_run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("code", [
    "import expq",
    "import expq.launcher.cli",
    "from expq.launcher.cli import build_parser; build_parser()",
    "import contextlib, io\nfrom expq.launcher.cli import main\n"
    "with contextlib.redirect_stdout(io.StringIO()): main(['--help'])\n"
    "with contextlib.redirect_stdout(io.StringIO()): main(['submit', '--help'])",
])
def test_start_up_imports_nothing_heavy(code: str) -> None:
    probe = f"{code}\nimport sys\nprint(sorted(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"


def test_python_dash_m_and_the_console_script(tmp_path: Path) -> None:
    result = expq("--help")
    assert result.returncode == 0 and "submit" in result.stdout and result.stderr == ""
    root = str(tmp_path / "r")
    result = expq("--root", root, "submit", "--", "echo", "hi")
    assert (result.returncode, result.stdout, result.stderr) == (0, "1\n", "")
    result = expq("--root", root, "submit", "--sweep", "a=1,,2", "--", "echo")
    assert result.returncode == 2 and result.stdout == "" and result.stderr.count("\n") == 1
    assert result.stderr.startswith("expq: error: invalid --sweep 'a=1,,2'")
    script = Path(sys.executable).with_name("expq")
    if script.exists():
        result = subprocess.run([str(script), "--root", root, "cancel", "1"], capture_output=True, text=True,
                                timeout=60)
        assert (result.returncode, result.stdout) == (0, "1 cancelled\n")


def test_cancel_and_retry_print_what_happened(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = str(tmp_path / "r")
    cli_run(capsys, "--root", root, "submit", "--sweep", "a=1,2,3", "--", "true")
    queue = JobQueue(root)
    _, spec = queue.get(2)
    queue.move(spec, State.PENDING, State.RUNNING)
    assert cli_run(capsys, "--root", root, "cancel", "1", "2") == (0, "1 cancelled\n2 cancel requested\n", "")
    assert cli_run(capsys, "--root", root, "retry", "1") == (0, "1\n", "")
    assert queue.state_of(1) is State.PENDING
    code, out, err = cli_run(capsys, "--root", root, "cancel", "3", "3")
    assert code == 0 and queue.state_of(3) is State.CANCELLED


def test_an_unexpected_exception_is_one_line_and_exit_1(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    root = str(tmp_path / "r")
    cli_run(capsys, "--root", root, "submit", "--", "true")
    from expq.launcher import report

    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(report, "collect", boom)
    monkeypatch.delenv("EXPQ_DEBUG", raising=False)
    assert cli_run(capsys, "--root", root, "status") == (
        1, "", "expq: internal error: RuntimeError: boom (set EXPQ_DEBUG=1 for the traceback)\n")
    monkeypatch.setenv("EXPQ_DEBUG", "1")
    code, _, err = cli_run(capsys, "--root", root, "status")
    assert code == 1 and err.startswith("Traceback (most recent call last):") and "RuntimeError: boom" in err


def test_a_filesystem_error_is_exit_1_without_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    root = str(tmp_path / "r")
    cli_run(capsys, "--root", root, "submit", "--", "true")
    from expq.queue.store import JobQueue as Queue

    def full(self: object, specs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Queue, "enqueue", full)
    monkeypatch.delenv("EXPQ_DEBUG", raising=False)
    assert cli_run(capsys, "--root", root, "submit", "--", "true") == (
        1, "", "expq: error: [Errno 28] No space left on device\n")


def test_worker_command_passes_its_options(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[object] = []
    fake = types.ModuleType("expq.worker.main")
    fake.run_worker = lambda root, gpus, options: seen.append((root, gpus, options)) or 7  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "expq.worker.main", fake)
    assert main(["worker", "--root", str(tmp_path)]) == 7
    root, gpus, options = seen[-1]
    assert (root, gpus, options.slots, options.drain, options.max_jobs, options.poll, options.heartbeat,
            options.lease_timeout, options.grace) == (tmp_path, "auto", None, False, None, 0.5, 5.0, 60.0, 10.0)
    assert main(["--root", str(tmp_path), "worker", "--gpus", "0,1", "--slots", "3", "--drain", "--max-jobs", "9",
                 "--poll", "0.1", "--heartbeat", "2", "--lease-timeout", "30", "--grace", "1.5"]) == 7
    _, gpus, options = seen[-1]
    assert (gpus, options.slots, options.drain, options.max_jobs, options.poll, options.heartbeat,
            options.lease_timeout, options.grace) == ("0,1", 3, True, 9, 0.1, 2.0, 30.0, 1.5)
    code, _, err = cli_run(capsys, "worker", "--slots", "0")
    assert code == 2 and "'0' is not a whole number >= 1" in err


def test_root_given_before_and_after_the_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = str(tmp_path / "a"), str(tmp_path / "b")
    cli_run(capsys, "--root", a, "submit", "--", "true")
    cli_run(capsys, "--root", a, "submit", "--", "true")
    cli_run(capsys, "--root", b, "submit", "--", "true")
    assert cli_run(capsys, "--root", b, "status", "--root", a, "--json")[1].count('"id"') == 2


def _wait_for_jobs(root: Path, count: int, wait_until: Callable[..., object]) -> JobQueue:
    queue = JobQueue(root)
    wait_until(lambda: queue.exists() and len(queue.list_names(State.PENDING)) == count, timeout=30,
               message="submit --wait never enqueued its jobs")
    return queue


@pytest.mark.parametrize(("outcomes", "code", "summary"), [
    ((State.DONE, State.DONE), 0, "2/2 ended (2 done)"),
    ((State.DONE, State.FAILED), 1, "2/2 ended (1 done, 1 failed)"),
])
def test_submit_wait_until_the_jobs_end(tmp_path: Path, wait_until: Callable[..., object],
                                        outcomes: tuple[State, State], code: int, summary: str) -> None:
    root = tmp_path / "r"
    proc = subprocess.Popen([sys.executable, "-m", "expq", "--root", str(root), "submit", "--wait",
                             "--sweep", "a=1,2", "--", "true"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        queue = _wait_for_jobs(root, 2, wait_until)
        for job, outcome in zip((1, 2), outcomes):
            _, spec = queue.get(job)
            queue.move(spec, State.PENDING, State.RUNNING)
            queue.move(spec, State.RUNNING, outcome)
        out, err = proc.communicate(timeout=30)
    finally:
        proc.kill() if proc.poll() is None else None
    assert proc.returncode == code and out == "1\n2\n"
    assert err.splitlines()[-1].endswith(summary) and "expq: error" not in err


def test_end_to_end_with_a_real_worker(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = str(tmp_path / "r")
    assert cli_run(capsys, "--root", root, "submit", "--experiment", "demo", "--sweep", "x=1,2,3", "--",
                   "sh", "-c", "echo out {x}; exit $(( {x} == 3 ))")[:2] == (0, "1\n2\n3\n")
    assert cli_run(capsys, "--root", root, "submit", "--after", "3", "--", "echo", "never")[:2] == (0, "4\n")
    result = expq("--root", root, "worker", "--drain", "--gpus", "none", timeout=120)
    assert result.returncode == 0, result.stderr
    code, out, _ = cli_run(capsys, "--root", root, "status", "--json")
    jobs = {job["id"]: job for job in json.loads(out)["jobs"]}
    assert [jobs[i]["state"] for i in (1, 2, 3, 4)] == ["done", "done", "failed", "cancelled"]
    assert jobs[3]["exit_code"] == 1 and jobs[4]["reason"] == "dependency 3 failed"
    assert jobs[1]["attempts"] == 1 and jobs[1]["host"] and jobs[1]["started_at"] <= jobs[1]["finished_at"]
    code, out, _ = cli_run(capsys, "--root", root, "logs", "2")
    assert code == 0 and out.splitlines()[-1] == "out 2"
    code, out, _ = cli_run(capsys, "--root", root, "status")
    assert out.splitlines()[0] == "pending 0  running 0  done 2  failed 1  cancelled 1  (total 4)"
    assert cli_run(capsys, "--root", root, "retry", "3", "4")[:2] == (0, "3\n4\n")
    assert os.path.isdir(jobs[1]["run_dir"])


def test_command_modules_name_exactly_the_commands_they_register() -> None:
    whole = build_parser()
    [commands] = [a for a in whole._actions if isinstance(a, argparse._SubParsersAction)]
    assert list(commands.choices) == [name for names in COMMAND_MODULES.values() for name in names]


@pytest.mark.parametrize("argv", [
    ["worker", "--gpus", "none", "--slots", "3", "--drain"],
    ["--root", "/tmp/r", "status", "--json", "--state", "done"],
    ["--root=/tmp/r", "cancel", "4", "5"],
    ["submit", "--sweep", "i=range(3)", "--", "echo", "{i}"],
    ["rm", "--dry-run", "7"],
])
def test_a_command_line_parses_the_same_with_only_its_commands_built(argv: list[str]) -> None:
    command = named_command(argv)
    assert command is not None and command in argv
    assert vars(build_parser(command).parse_args(argv)) == vars(build_parser().parse_args(argv))


@pytest.mark.parametrize("argv", [["--help"], ["-h", "worker"], ["--root", "status"], ["bogus"], []])
def test_help_a_missing_or_unknown_command_needs_every_command(argv: list[str]) -> None:
    assert named_command(argv) is None


@pytest.mark.parametrize("argv", [["--help"], ["status", "--help"], ["worker", "--gpus", "none", "--drain"]])
def test_start_up_leaves_out_shutil_and_subprocess(argv: list[str], tmp_path: Path) -> None:
    # shutil brings zlib, bz2 and lzma (4 ms of every start-up); subprocess is for GPU probes only
    code = ("import contextlib, io, sys\nfrom expq.launcher.cli import main\n"
            f"with contextlib.redirect_stdout(io.StringIO()): main({['--root', str(tmp_path / 'root'), *argv]!r})\n"
            "print(sorted(m for m in ('shutil', 'subprocess') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_what_runs_before_a_workers_start_up_turn_is_light() -> None:
    # 32 workers launched together on 2 CPUs all pay it at once (see expq.worker.start_turn)
    code = ("import sys\nimport expq.launcher.entry, expq.worker.start_turn\n"
            "print(sorted(m for m in ('typing', 'collections', 'threading', 'argparse', 're', 'dataclasses', "
            "'pathlib', 'expq.launcher.cli') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.strip() == "[]"


def test_help_is_as_wide_as_columns_says(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    narrow = expq("worker", "--help").stdout
    monkeypatch.delenv("COLUMNS")  # and stdout is a pipe: argparse's 80 columns
    wide = expq("worker", "--help").stdout
    assert max(map(len, narrow.splitlines())) <= 60 < max(map(len, wide.splitlines())) <= 80
