"""``expq runs``: the runs table of a sweep that real workers ran (natural order, varying keys only,
group-by with mean/min/max, sort, filter, CSV, fitted to the terminal)."""
from __future__ import annotations

import csv
import io
import statistics
import subprocess
import sys
from pathlib import Path

import pytest

from expq.launcher.cli import main

REPO = Path(__file__).resolve().parents[2]
LRS = ("0.02", "0.05", "0.1")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """12 runs of examples/train.py (lr x seed), run by a real worker; returns the root."""
    root = tmp_path_factory.mktemp("runs") / "root"
    args = ["--experiment", "sw", "--sweep", f"lr={','.join(LRS)}", "--sweep", "seed=0,1,2,3", "--set", "steps=30"]
    for command in (["submit", *args, "--", sys.executable, "examples/train.py"],
                    ["worker", "--gpus", "none", "--slots", "2", "--drain", "--poll", "0.05"]):
        done = subprocess.run([sys.executable, "-m", "expq", "--root", str(root), *command], cwd=REPO,
                              capture_output=True, text=True, timeout=180)
        assert done.returncode == 0, done.stderr
    return root


def _last(run_dir: Path, metric: str) -> float:
    return float((run_dir / "metrics" / f"{metric}.csv").read_text().splitlines()[-1].split(",")[1])


def _run_dirs(root: Path) -> list[Path]:
    return sorted((root / "experiments" / "sw").iterdir(), key=lambda p: int(p.name.split("-")[0]))


def _runs(root: Path, capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["--root", str(root), "runs", "sw", *args]) == 0
    return capsys.readouterr().out


def test_table_in_natural_order_with_varying_keys_only(sweep: Path, capsys: pytest.CaptureFixture[str],
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    lines = _runs(sweep, capsys).splitlines()
    assert lines[0] == "same in every run: steps=30"
    header = lines[1].split()
    assert header[:4] == ["run", "state", "config.lr", "config.seed"] and "config.steps" not in header
    rows = [line.split() for line in lines[2:]]
    assert [r[0] for r in rows] == [p.name for p in _run_dirs(sweep)]  # 1, 2, ..., 10, 11, 12
    assert [r[0].split("-")[0] for r in rows][8:] == ["9", "10", "11", "12"]
    column = header.index("loss.last")
    for row, run_dir in zip(rows, _run_dirs(sweep)):
        assert row[1] == "done"
        assert float(row[column]) == pytest.approx(_last(run_dir, "loss"), rel=1e-5)


def test_group_by_gives_mean_min_max_per_value(sweep: Path, capsys: pytest.CaptureFixture[str],
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "250")
    lines = _runs(sweep, capsys, "--group-by", "lr").splitlines()
    header = lines[0].split()
    assert header[:5] == ["config.lr", "runs", "loss.mean", "loss.min", "loss.max"]
    assert [line.split()[0] for line in lines[1:]] == list(LRS)
    for line, lr in zip(lines[1:], LRS):
        cells = line.split()
        lasts = [_last(d, "loss") for d in _run_dirs(sweep) if f"lr={lr}," in d.name]
        assert cells[1] == "4"
        assert [float(c) for c in cells[2:5]] == pytest.approx([statistics.mean(lasts), min(lasts), max(lasts)], rel=1e-5)


def test_sort_filter_and_csv(sweep: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = _runs(sweep, capsys, "--csv", "--filter", "lr=0.1", "--sort", "loss.last", "--desc")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 4 and {r["config.lr"] for r in rows} == {"0.1"} and {r["config.steps"] for r in rows} == {"30"}
    losses = [float(r["loss.last"]) for r in rows]
    assert losses == sorted(losses, reverse=True)
    ascending = list(csv.DictReader(io.StringIO(_runs(sweep, capsys, "--csv", "--sort", "seed"))))
    assert [r["config.seed"] for r in ascending] == ["0"] * 3 + ["1"] * 3 + ["2"] * 3 + ["3"] * 3


def test_fitted_to_the_terminal_width(sweep: Path, capsys: pytest.CaptureFixture[str],
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "70")
    lines = _runs(sweep, capsys).splitlines()
    assert all(len(line) <= 70 for line in lines[1:-1])
    assert lines[-1].startswith("(") and "more columns" in lines[-1] and "--csv" in lines[-1]


@pytest.mark.parametrize(("args", "message"), [
    (["--filter", "lr"], "expq: error: invalid filter 'lr': expected KEY=VALUE, e.g. lr=0.1\n"),
    (["--filter", "nope=1"], "expq: error: cannot filter on 'nope': no such column or config key\n"),
    (["--group-by", "nope"], "expq: error: cannot group by 'nope': no run has that config key (keys: steps, lr, seed)\n"),
    (["--sort", "nope"], None),
])
def test_bad_options_are_one_line_and_exit_2(sweep: Path, capsys: pytest.CaptureFixture[str], args: list[str],
                                             message: str | None) -> None:
    assert main(["--root", str(sweep), "runs", "sw", *args]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1 and err.startswith("expq: error: ")
    if message is not None:
        assert err == message


def test_unknown_experiment(sweep: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--root", str(sweep), "runs", "nope"]) == 2
    assert capsys.readouterr().err == "expq: error: no such experiment or run: nope\n"
