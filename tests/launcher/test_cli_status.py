"""``expq status`` and ``expq show``: the counts, the table, ``--json``, ``--watch``."""
from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path

import pytest

from expq.launcher import render
from expq.launcher.cli import main
from expq.queue.attempts import Attempt, Outcome, finish_attempt
from expq.queue.lease import write_lease
from expq.queue.states import State
from expq.queue.store import JobQueue

sys.path.insert(0, str(Path(__file__).parent))
from test_report import lease  # noqa: E402

JSON_FIELDS = {"id", "state", "experiment", "name", "command", "config", "gpus", "attempts", "exit_code", "signal",
               "reason", "run_dir", "submitted_at", "started_at", "finished_at", "host", "priority", "after",
               "retries", "timeout", "slurm_job"}


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def root(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Path:
    """Jobs 1-4: 1 done, 2 failed (killed by a signal), 3 running on GPUs 0,1, 4 pending after 3."""
    monkeypatch.setenv("COLUMNS", "150")
    monkeypatch.setenv("EXPQ_ROOT", str(tmp_path / "root"))
    monkeypatch.chdir(tmp_path)
    assert cli(capsys, "submit", "--experiment", "mnist", "--sweep", "lr=0.1,0.01,0.001", "--",
               "python", "train.py", "--lr", "{lr}")[0] == 0
    assert cli(capsys, "submit", "--gpus", "2", "--after", "3", "--", "python", "eval.py")[0] == 0
    queue = JobQueue(tmp_path / "root")
    now = time.time()
    for job, state in ((1, State.DONE), (2, State.FAILED), (3, State.RUNNING)):
        _, spec = queue.get(job)
        queue.move(spec, State.PENDING, State.RUNNING)
        record = Attempt(number=1, host="box", worker_id="w", started_at=now - 130, gpus=("0", "1"))
        if state is State.RUNNING:
            write_lease(queue.paths, lease(job, record))
            continue
        run = queue.paths.run(spec.run_dir)
        finish_attempt(run, record, outcome=Outcome(state.value), finished_at=now - 10)
        run.result.write_text(json.dumps({
            "version": 1, "job_id": job, "state": state.value, "attempts": 1, "host": "box", "gpus": ["0", "1"],
            "reason": "" if state is State.DONE else "killed by SIGKILL", "signal": None if job == 1 else "SIGKILL",
            "exit_code": 0 if job == 1 else None, "started_at": now - 130, "finished_at": now - 10,
            "duration": 120.0}))
        queue.move(spec, State.RUNNING, state)
    return tmp_path / "root"


def test_status_table(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = cli(capsys, "status")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == "pending 1  running 1  done 1  failed 1  cancelled 0  (total 4)"
    assert lines[1] == ""
    assert lines[2].split() == ["ID", "EXP/NAME", "STATE", "REASON", "NGPU", "GPUS", "ATT", "TIME", "EXIT", "HOST",
                                "COMMAND"]
    rows = [line.split() for line in lines[3:]]
    assert rows[0] == ["1", "mnist/lr=0.1", "done", "-", "-", "0,1", "1", "2m00s", "0", "box", "python", "train.py",
                       "--lr", "0.1"]
    assert rows[1][:10] == ["2", "mnist/lr=0.01", "failed", "killed", "by", "SIGKILL", "-", "0,1", "1", "2m00s"]
    assert rows[1][10:12] == ["SIGKILL", "box"]
    assert rows[2][:6] == ["3", "mnist/lr=0.001", "running", "-", "-", "0,1"] and rows[2][7] in ("2m10s", "2m11s")
    assert rows[3][:7] == ["4", "default/eval.py", "pending", "after", "3", "2", "-"]  # asks for 2, runs on none yet
    assert len(lines) == 7


@pytest.mark.parametrize("columns", [80, 100, 60])
def test_the_table_fits_the_terminal(root: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                     columns: int) -> None:
    monkeypatch.setenv("COLUMNS", str(columns))
    code, out, _ = cli(capsys, "status")
    lines = out.splitlines()
    assert code == 0 and all(len(line) <= columns for line in lines[2:])
    assert [line.split()[0] for line in lines[3:]] == ["1", "2", "3", "4"]
    if columns >= 80:  # the command gave way; the reasons are whole
        assert "killed by SIGKILL" in lines[4] and lines[6].split()[3:5] == ["after", "3"]


def test_at_80_columns_the_command_is_cut_before_anything_else(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "80")
    root = str(tmp_path / "r")
    cli(capsys, "--root", root, "submit", "--experiment", "mnist", "--sweep", "lr=0.1,0.01", "--", "python",
        "train.py", "--lr", "{lr}", "--data", "/datasets/imagenet/train")
    code, out, _ = cli(capsys, "--root", root, "status")
    lines = out.splitlines()
    # ATT and HOST (all "-" here) leave before the command goes below 20 characters
    assert code == 0 and lines[2].split() == ["ID", "EXP/NAME", "STATE", "REASON", "TIME", "EXIT", "COMMAND"]
    assert all(len(line) <= 80 for line in lines) and max(len(line) for line in lines) == 80
    assert lines[3].split()[:4] == ["1", "mnist/lr=0.1", "pending", "no"] and "no live worker" in lines[3]
    assert lines[3].endswith("…") and "  python train.py --lr " in lines[3]


def test_status_filters_and_ids(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def ids(*argv: str) -> list[str]:
        code, out, _ = cli(capsys, "status", *argv)
        assert code == 0
        return [line.split()[0] for line in out.splitlines()[3:]]

    assert ids("--state", "failed", "--state", "done") == ["1", "2"]
    assert ids("--experiment", "default") == ["4"]
    assert ids("3", "1") == ["1", "3"]
    assert ids("--experiment", "nope") == []


def test_status_json_is_the_stable_format(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "status", "--json")
    data = json.loads(out)
    assert code == 0 and data["version"] == 1
    assert data["counts"] == {"pending": 1, "running": 1, "done": 1, "failed": 1, "cancelled": 0}
    jobs = {job["id"]: job for job in data["jobs"]}
    assert all(JSON_FIELDS <= set(job) for job in jobs.values())
    assert jobs[1]["command"] == ["python", "train.py", "--lr", "0.1"] and jobs[1]["config"] == {"lr": 0.1}
    assert jobs[1]["gpus"] == ["0", "1"] and jobs[1]["exit_code"] == 0 and jobs[1]["attempts"] == 1
    assert jobs[2]["signal"] == "SIGKILL" and jobs[2]["reason"] == "killed by SIGKILL"
    assert jobs[3]["state"] == "running" and jobs[3]["finished_at"] is None and jobs[3]["started_at"] > 0
    assert jobs[4]["gpus"] == [] and jobs[4]["after"] == [3] and jobs[4]["reason"] == "after 3"
    assert jobs[4]["run_dir"] == str(root / "experiments/default/4-eval.py")
    _, out, _ = cli(capsys, "status", "--json", "--state", "pending")
    assert [job["id"] for job in json.loads(out)["jobs"]] == [4]


def test_status_json_lists_every_job(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = str(tmp_path / "r")
    cli(capsys, "--root", root, "submit", "--sweep", "a=range(0,30)", "--", "true")
    for job in range(1, 26):
        cli(capsys, "--root", root, "cancel", str(job))
    _, out, _ = cli(capsys, "--root", root, "status")
    assert "(65 more not shown" not in out and "(15 more not shown; --all lists every job" in out
    _, out, _ = cli(capsys, "--root", root, "status", "--json")
    assert len(json.loads(out)["jobs"]) == 30
    _, out, _ = cli(capsys, "--root", root, "status", "--all")
    assert len(out.splitlines()) == 3 + 30


def test_status_of_an_empty_queue(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    JobQueue(tmp_path / "r").create()
    assert cli(capsys, "--root", str(tmp_path / "r"), "status") == (
        0, "pending 0  running 0  done 0  failed 0  cancelled 0  (total 0)\n", "")


def test_watch_redraws_until_ctrl_c(root: Path, capsys: pytest.CaptureFixture[str],
                                    monkeypatch: pytest.MonkeyPatch) -> None:
    naps: list[float] = []

    def nap(seconds: float) -> None:
        naps.append(seconds)
        if len(naps) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(render.time, "sleep", nap)
    code, out, _ = cli(capsys, "status", "--watch", "0.5")
    assert code == 0 and naps == [0.5, 0.5, 0.5]
    assert out.count("pending 1  running 1") == 3


def test_watch_on_a_terminal_clears_the_screen() -> None:
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    stream = Tty()
    frames = iter(["one\n", "two\n"])
    assert render.watch(lambda: next(frames), 0.0, stream, rounds=2) == 0
    assert stream.getvalue() == f"{render.CLEAR}one\n{render.CLEAR}two\n"


def test_show_text_and_json(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "show", "2")
    assert code == 0
    assert out.startswith("job:\n  id: 2\n  state: failed\n  experiment: mnist\n  name: lr=0.01\n")
    assert "  reason: killed by SIGKILL\n" in out and "  command: python train.py --lr 0.01\n" in out
    assert "\nconfig:\n  lr: 0.01\n" in out
    assert f"  stdout: {root}/experiments/mnist/2-lr=0.01/stdout.log\n" in out
    assert "\nattempts:\n- number: 1\n" in out and "\nresult:\n  version: 1\n" in out
    code, out, _ = cli(capsys, "show", "--json", "4")
    data = json.loads(out)
    assert data["job"]["reason"] == "after 3" and data["spec"]["gpus"] == 2 and data["attempts"] == []
    assert data["result"] is None


@pytest.mark.parametrize(("seconds", "text"), [(None, "-"), (0.25, "0.2s"), (9.99, "10.0s"), (42, "42s"),
                                               (61, "1m01s"), (3600 * 2 + 300, "2h05m"), (86400 * 3 + 3600 * 4, "3d04h")])
def test_durations(seconds: float | None, text: str) -> None:
    assert render.duration(seconds) == text


def test_long_cells_are_cut_to_the_terminal() -> None:
    rec = {"id": 1, "experiment": "e", "name": "n" * 100, "state": "pending", "reason": "", "gpus": [],
           "gpus_requested": 0, "attempts": 0, "elapsed": None, "signal": None, "exit_code": None, "host": None,
           "command": ["echo", "x" * 300]}
    lines = render.table([rec], 130).splitlines()
    assert all(len(line) <= 130 for line in lines) and len(lines[1]) == 130
    assert lines[1].endswith("…") and "e/" + "n" * 37 + "…" in lines[1]


@pytest.mark.parametrize("width", [200, 120, 80, 64, 40, 20, 1])
def test_any_table_fits_any_width(width: int) -> None:
    recs = [{"id": job, "experiment": "exp" * job, "name": "n" * 50, "state": "failed", "gpus": ["0", "1", "2"],
             "reason": "needs 8 GPUs (largest worker has 4)\nsecond line", "gpus_requested": 3, "attempts": 2,
             "elapsed": 3600.0, "signal": "SIGKILL", "exit_code": None, "host": "h" * 30, "slurm_job": "1234567_89",
             "command": ["python", "-c", "print(1)\nprint(2)", "x" * 200]} for job in (1, 22, 333)]
    lines = render.table(recs, width).splitlines()
    assert len(lines) == 4 and all(len(line) <= width for line in lines)
    if width >= 200:  # one line per row, whatever newlines the cells hold
        assert "needs 8 GPUs (largest worker has 4) sec…" in lines[1] and "'print(1) print(2)'" in lines[1]


def test_progress_line() -> None:
    assert render.progress_line(0, 0, 0, 4, width=8) == "[--------] 0/4 ended (0 done)"
    assert render.progress_line(2, 1, 1, 4, width=8) == "[########] 4/4 ended (2 done, 1 failed, 1 cancelled)"
    assert render.progress_line(1, 0, 0, 4, width=8, waiting="3 pending: no live worker") == (
        "[##------] 1/4 ended (1 done); 3 pending: no live worker")
