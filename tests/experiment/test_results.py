"""Point 6: reading stored experiments and runs, the runs table, plots and the ``expq plot`` command."""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import pytest

import expq
from expq.errors import NotFound
from expq.experiment.reading import StoredExperiment, StoredRun
from expq.launcher import plot_command


def _sweep(tmp_path: Path) -> expq.Experiment:
    exp = expq.Experiment("sweep", root=tmp_path / "root", capture_output=False, sources=False)
    exp.add_config({"lr": 0.1, "model": {"depth": 2}})

    @exp.command
    def train(lr: float) -> dict[str, float]:
        for step in range(5):
            exp.log_scalar("loss", 1.0 / (1 + step * lr))
            exp.log_scalar("acc", step * lr)
        exp.save([lr], "lr")
        return {"final": lr}

    for lr in (0.1, 0.5, 1.0):
        exp.run("train", lr=lr)
    exp.close()
    return exp


def _queued_run(tmp_path: Path, name: str, state: str) -> Path:
    run = tmp_path / "root" / "experiments" / "sweep" / name
    (run / "metrics").mkdir(parents=True)
    (run / "job.json").write_text("{}")
    (run / "config.yaml").write_text("lr: 2.0\n")
    (run / "result.json").write_text(json.dumps({"state": state, "exit_code": 1}))
    (run / "metrics" / "loss.csv").write_text("step,value,time\n0,0.9,1.0\n1,nan,2.0\n2,0.7,3.0\n")
    return run


def test_open_gives_runs_with_config_files_metrics_and_result(tmp_path: Path) -> None:
    exp = _sweep(tmp_path)
    stored = expq.open(exp.collection_dir)
    assert isinstance(stored, StoredExperiment) and stored.name == "sweep"
    (top,) = stored.runs
    assert top.state == "done"
    names = [run.name.split("/", 1)[1] for run in top.runs]
    assert names == ["train_lr=0.1", "train_lr=0.5", "train_lr=1.0"]
    run = expq.open(top.runs[1].path)
    assert isinstance(run, StoredRun)
    assert run.config == {"lr": 0.5, "model": {"depth": 2}}
    assert run.load("lr") == [0.5] and run.files == ["lr.json"]
    assert run.result == {"final": 0.5}
    assert run.metrics == ["acc", "loss"] and len(run.load_scalar("loss")) == 5
    assert expq.open("sweep", root=tmp_path / "root").path == stored.path


def test_open_refuses_what_is_not_there(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        expq.open(tmp_path / "nothing")
    with pytest.raises(NotFound):
        expq.open("nothing", root=tmp_path)


def test_runs_table_compares_a_sweep_including_queued_runs(tmp_path: Path) -> None:
    exp = _sweep(tmp_path)
    _queued_run(tmp_path, "42", "failed")
    table = expq.open(exp.collection_dir).table(maximize=["acc"])
    by_run = {row["run"].rsplit("/", 1)[-1]: row for row in table.rows}
    assert set(by_run) == {"42", exp.path.name, "train_lr=0.1", "train_lr=0.5", "train_lr=1.0"}
    row = by_run["train_lr=0.5"]
    assert row["state"] == "done" and row["config.lr"] == 0.5 and row["config.model.depth"] == 2
    assert row["loss.last"] == pytest.approx(1 / 3) and row["loss.best"] == pytest.approx(1 / 3)
    assert row["acc.best"] == pytest.approx(2.0) and row["acc.last"] == pytest.approx(2.0)
    queued = by_run["42"]
    assert queued["state"] == "failed" and queued["config.lr"] == 2.0
    assert queued["loss.best"] == 0.7 and queued["loss.last"] == 0.7
    assert table.columns[:2] == ["run", "state"]
    text = str(table)
    assert "train_lr=0.5" in text and "loss.best" in text
    assert table.to_csv().splitlines()[0].startswith("run,state,")
    assert len(table) == 5 and len(exp.runs_table()) == 5


def test_table_of_a_live_experiment_and_nan_last(tmp_path: Path) -> None:
    exp = expq.Experiment("live", root=tmp_path / "root", capture_output=False, sources=False)
    exp.log_scalar("loss", 1.0)
    exp.log_scalar("loss", math.nan)
    (row,) = exp.runs_table().rows
    assert row["state"] == "running" and math.isnan(row["loss.last"]) and row["loss.best"] == 1.0


def test_plot_draws_several_runs_and_metrics(tmp_path: Path) -> None:
    exp = expq.Experiment("p", root=tmp_path / "root", capture_output=False, sources=False)
    for lr in (0.1, 0.2):
        exp.run(lambda lr=lr: [exp.log_scalars({"loss": 1 - lr * s, "acc": lr * s}) for s in range(4)], lr=lr)
    path = exp.plot(["loss", "acc"])
    assert path.read_bytes().startswith(b"\x89PNG") and path.parent == exp.path / "files" / "plots"
    svg = exp.plot("loss", output=tmp_path / "loss.svg")
    assert svg.read_text().count("<path") > 2
    with pytest.raises(NotFound, match="metric"):
        exp.plot("missing", output=tmp_path / "x.png")


def test_plot_command_writes_png_and_prints_its_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _sweep(tmp_path)
    parser = argparse.ArgumentParser()
    plot_command.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["plot", "sweep", "--metric", "loss", "--metric", "acc"])
    args.root = tmp_path / "root"
    assert args.handler is plot_command.run
    assert plot_command.run(args) == 0
    written = Path(capsys.readouterr().out.strip())
    assert written.name == "sweep_loss_acc.png" and written.read_bytes().startswith(b"\x89PNG")
    args = parser.parse_args(["plot", "sweep", "-m", "loss", "--output", str(tmp_path / "out" / "l.pdf")])
    args.root = tmp_path / "root"
    assert plot_command.run(args) == 0
    assert (tmp_path / "out" / "l.pdf").read_bytes().startswith(b"%PDF")
    args = parser.parse_args(["plot", "nope", "-m", "loss"])
    args.root = tmp_path / "root"
    with pytest.raises(NotFound):
        plot_command.run(args)


def test_crashed_run_is_reported_as_crashed(tmp_path: Path) -> None:
    run = tmp_path / "root" / "experiments" / "x" / "r"
    run.mkdir(parents=True)
    import socket

    (run / "run.json").write_text(json.dumps({"state": "running", "host": socket.gethostname(), "pid": 2**22 + 7}))
    assert expq.open(run).state == "crashed"


def test_the_sweep_example_runs(tmp_path: Path) -> None:
    from experiment_scripts import run_script

    example = Path(__file__).resolve().parents[2] / "examples" / "experiment_sweep.py"
    done = run_script(tmp_path, example.read_text(), name="experiment_sweep.py")
    assert "train_lr=0.05" in done.stdout and "loss_acc.png" in done.stdout


def test_no_such_metric_lists_the_metrics_that_exist(tmp_path: Path) -> None:
    exp = _sweep(tmp_path)
    run = expq.open(exp.path / "runs" / "train_lr=0.1")
    with pytest.raises(NotFound, match=r"no such metric: los in .* \(logged: acc, loss\)$"):
        run.load_scalar("los")
    live = expq.Experiment("empty", root=tmp_path / "root", capture_output=False, sources=False)
    with pytest.raises(NotFound, match=r"no such metric: loss in .* \(no metric logged yet\)$"):
        live.load_scalar("loss")
    live.log_scalar("acc", 1.0)
    with pytest.raises(NotFound, match=r"\(logged: acc\)$"):
        live.load_scalar("loss")
    live.close()


class Point:
    def __init__(self, x: int) -> None:
        self.x = x


def test_stored_run_loads_a_type_saved_with_add_saver(tmp_path: Path) -> None:
    exp = expq.Experiment("custom", root=tmp_path / "root", capture_output=False, sources=False)
    exp.add_saver(Point, lambda obj, path: path.write_text(str(obj.x)), "pt",
                  loader=lambda path: Point(int(path.read_text())))
    exp.save(Point(7), "origin")
    exp.close()
    loaded = expq.open(exp.path).load("origin")
    assert isinstance(loaded, Point) and loaded.x == 7
    # an explicit loader wins, for files written by another process
    assert expq.open(exp.path).load("origin.pt", loader=lambda path: path.read_text()) == "7"


@pytest.mark.parametrize(("name", "content"), [
    ("config.yaml", b"lr: [1\n"), ("config.yaml", b"\xff\xfe"), ("config.yaml", b"- 1\n"),
    ("run.json", b'{"config": [1, 2]}'),
])
def test_a_damaged_config_reads_as_empty(tmp_path: Path, name: str, content: bytes) -> None:
    run_dir = tmp_path / "root" / "experiments" / "e" / "1"
    run_dir.mkdir(parents=True)
    (run_dir / "job.json").write_text("{}")
    (run_dir / name).write_bytes(content)
    assert expq.open(run_dir).config == {}
