"""``expq export tensorboard`` and the live writer, read back with TensorBoard's own EventAccumulator."""
from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

import expq
from expq.experiment.config import flatten
from expq.export.source import select_runs
from expq.export.tensorboard_export import STATE_FILE, export_tensorboard
from expq.launcher.cli import main


def _reader(folder: Path) -> EventAccumulator:
    reader = EventAccumulator(os.fspath(folder), size_guidance={"scalars": 0, "tensors": 0})
    reader.Reload()
    return reader


def _assert_same_points(reader: EventAccumulator, run: expq.StoredRun) -> None:
    """Every point of every metric, exactly once: step, value (as float32) and wall time."""
    assert sorted(reader.Tags()["scalars"]) == sorted(run.metrics)
    for metric in run.metrics:
        stored = run.load_scalar(metric)
        read = reader.Scalars(metric)
        assert [p.step for p in read] == stored["step"].tolist(), metric
        with np.errstate(over="ignore"):
            expected = stored["value"].astype(np.float32)
        got = np.array([p.value for p in read], dtype=np.float32)
        assert np.array_equal(got, expected, equal_nan=True), metric
        assert np.allclose([p.wall_time for p in read], stored["time"], rtol=0, atol=1e-6), metric


def _session(reader: EventAccumulator) -> plugin_data_pb2.HParamsPluginData:
    content = reader.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"])
    end = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_end_info"])
    return start.session_start_info, end.session_end_info


def test_export_of_a_sweep_matches_load_scalar_and_lists_each_config(sweep_root, tmp_path, capsys):
    out = tmp_path / "tb"
    assert main(["--root", str(sweep_root), "export", "tensorboard", "sweep", "--out", str(out)]) == 0
    said = capsys.readouterr().out
    runs = expq.open(sweep_root / "experiments" / "sweep").all_runs()
    assert len(runs) == 6  # three jobs, each with a nested run
    total = sum(len(run.load_scalar(m)) for run in runs for m in run.metrics)
    assert said.splitlines()[0] == f"{total} new points of 6 of 6 runs written to {out}"
    assert "2 of them are NaN or inf (exported as such)" in said
    for run in runs:
        folder = out.joinpath(*run.name.split("/"))
        reader = _reader(folder)
        _assert_same_points(reader, run)
        start, end = _session(reader)
        hparams = {key: value.WhichOneof("kind") and getattr(value, value.WhichOneof("kind"))
                   for key, value in start.hparams.items()}
        assert hparams == {k: float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
                           for k, v in flatten(run.config).items()}
        assert end.status == api_pb2.STATUS_SUCCESS


def test_a_second_export_writes_nothing_and_duplicates_nothing(sweep_root, tmp_path):
    out = tmp_path / "tb"
    runs = select_runs(["sweep"], sweep_root)
    first = export_tensorboard(runs, out)
    files = sorted(p.name for p in out.rglob("events.out.tfevents.*"))
    second = export_tensorboard(runs, out)
    assert first.points > 0 and second.points == 0
    assert sorted(p.name for p in out.rglob("events.out.tfevents.*")) == files
    for run in runs:
        _assert_same_points(_reader(out.joinpath(*run.name.split("/"))), run)


def test_an_interrupted_export_leaves_nothing_a_rerun_would_show_twice(sweep_root, tmp_path):
    """An event file whose export never recorded itself (killed before the record) is removed."""
    out = tmp_path / "tb"
    run = select_runs(["sweep"], sweep_root)[0]
    export_tensorboard([run], out)
    (written,) = out.joinpath(run.name).glob("events.out.tfevents.*")
    stray = written.with_name(written.name.replace("expq-000001", "expq-000002"))
    shutil.copy(written, stray)  # what a second export killed before its record would leave
    temp = written.with_name(f".{written.name}.tmp")
    shutil.copy(written, temp)
    export_tensorboard([run], out)
    assert not stray.exists() and not temp.exists()
    _assert_same_points(_reader(out / run.name), run)


def test_a_live_sweep_exports_exactly_the_points_added_since(tmp_path, job_script, cli, wait_until):
    root = tmp_path / "root"
    gate = tmp_path / "gate"
    (job,) = [int(x) for x in cli(root, "submit", "--experiment", "live", "--set", "lr=0.5", "--set",
                                  f"gate={gate}", "--", sys.executable, str(job_script)).stdout.split()]
    worker = subprocess.Popen([sys.executable, "-m", "expq", "--root", str(root), "worker", "--drain", "--gpus",
                               "none", "--poll", "0.05"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        loss = root / "experiments" / "live"
        wait_until(lambda: any(len(p.read_text().splitlines()) == 7 for p in loss.glob("*/metrics/loss.csv")),
                   timeout=60, message="the job did not log its first 6 points")
        out = tmp_path / "tb"
        first = export_tensorboard(select_runs(["live"], root), out)
        assert [(r.name, r.points) for r in first.runs] == [(first.runs[0].name, 12)]  # 6 loss + 6 acc/val
        gate.touch()
        assert worker.wait(60) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    runs = select_runs(["live"], root)
    second = export_tensorboard(runs, out)
    top = runs[0]
    assert [(r.name, r.points, r.metrics) for r in second.runs] == [
        (top.name, 4, ["loss"]), (f"{top.name}/finetune", 1, ["loss"])]
    assert len(top.load_scalar("loss")) == 10
    for run in runs:
        _assert_same_points(_reader(out.joinpath(*run.name.split("/"))), run)
    assert export_tensorboard(runs, out).points == 0


def test_live_event_files_of_queued_jobs_hold_every_point(sweep_root):
    """The sweep's worker ran with EXPQ_TENSORBOARD=1: each run has its own live event file."""
    runs = expq.open(sweep_root / "experiments" / "sweep").all_runs()
    for run in runs:
        assert len(list((run.path / "tensorboard").glob("events.out.tfevents.*"))) == 1, run.name
        _assert_same_points(_reader(run.path / "tensorboard"), run)


def test_live_writer_by_hand_with_nested_runs(tmp_path):
    with expq.Experiment("by-hand", root=tmp_path / "root", sources=False, capture_output=False,
                         tensorboard=True, flush_interval=60) as exp:
        for step in range(50):
            exp.log_scalar("loss", 1 / (step + 1))
        exp.log_scalar("loss", math.nan)
        exp.log_scalar("big", 10**400)  # beyond float64 and float32: inf in TensorBoard
        exp.flush()
        exp.log_scalar("loss", 0.5, step=100)  # a second flush appends to the same file

        def inner():
            exp.log_scalar("inner", 2.0)
        exp.run(inner)
    stored = expq.open(exp.path)
    for run in stored.walk():
        assert len(list((run.path / "tensorboard").glob("events.out.tfevents.*"))) == 1
        _assert_same_points(_reader(run.path / "tensorboard"), run)


def test_without_the_option_no_event_files_are_written(tmp_path, monkeypatch):
    monkeypatch.delenv("EXPQ_TENSORBOARD", raising=False)
    with expq.Experiment("plain", root=tmp_path / "root", sources=False, capture_output=False) as exp:
        exp.log_scalar("loss", 1.0)
    assert not (exp.path / "tensorboard").exists()


@pytest.mark.parametrize("case", ["unknown", "out-is-a-file", "out-under-a-file"])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(sweep_root, tmp_path, capsys, case):
    target, out = "sweep", tmp_path / "tb"
    if case == "unknown":
        target = "no-such-experiment"
    elif case == "out-is-a-file":
        out.write_text("mine")
    else:
        (tmp_path / "file").write_text("mine")
        out = tmp_path / "file" / "tb"
    before = sorted(tmp_path.rglob("*"))
    assert main(["--root", str(sweep_root), "export", "tensorboard", target, "--out", str(out)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("expq: error: ")
    assert sorted(tmp_path.rglob("*")) == before
    if case == "out-is-a-file":
        assert out.read_text() == "mine"


def test_a_folder_holding_another_runs_export_is_refused(tmp_path, capsys):
    root = tmp_path / "root"
    paths = []
    for name in ("a", "b"):
        with expq.Experiment(name, root=root, sources=False, capture_output=False) as exp:
            exp.log_scalar("loss", 1.0)
        paths.append(exp.path)
    same = paths[1].with_name("run")
    paths[1].rename(same)
    paths[0].rename(paths[0].with_name("run"))
    out = tmp_path / "tb"
    assert main(["--root", str(root), "export", "tensorboard", "a", "--out", str(out)]) == 0
    state = (out / "run" / STATE_FILE).read_text()
    assert main(["--root", str(root), "export", "tensorboard", "b", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"expq: error: {out / 'run'} holds the export of another run")
    assert (out / "run" / STATE_FILE).read_text() == state


def test_a_failing_event_file_fails_neither_the_run_nor_its_csv(tmp_path, caplog):
    with expq.Experiment("blocked", root=tmp_path / "root", sources=False, capture_output=False,
                         tensorboard=True) as exp:
        (exp.path / "tensorboard").write_text("a file where the folder should be")
        for step in range(5):
            exp.log_scalar("loss", float(step))
    assert expq.open(exp.path).load_scalar("loss")["value"].tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
    assert "could not write the TensorBoard events" in caplog.text
    assert (exp.path / "tensorboard").read_text() == "a file where the folder should be"


def test_a_run_path_exports_that_run_and_its_nested_runs_only(sweep_root, tmp_path, capsys):
    top = expq.open(sweep_root / "experiments" / "sweep").runs[0]
    out = tmp_path / "tb"
    assert main(["export", "tensorboard", str(top.path), "--out", str(out)]) == 0
    assert capsys.readouterr().out.startswith(f"{sum(len(r.load_scalar(m)) for r in top.walk() for m in r.metrics)} "
                                              "new points of 2 of 2 runs")
    assert sorted(p.parent.relative_to(out).as_posix() for p in out.rglob(STATE_FILE)) == [
        top.name, f"{top.name}/finetune"]
    for run in top.walk():
        _assert_same_points(_reader(out.joinpath(*run.name.split("/"))), run)


def test_concurrent_exports_into_one_folder_write_every_point_once(sweep_root, tmp_path):
    """`expq tensorboard` re-exports while a user exports by hand: the folder's lock serialises them."""
    out = tmp_path / "tb"
    procs = [subprocess.Popen([sys.executable, "-m", "expq", "--root", str(sweep_root), "export", "tensorboard",
                               "sweep", "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
             for _ in range(3)]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], outputs
    runs = select_runs(["sweep"], sweep_root)
    total = sum(len(run.load_scalar(m)) for run in runs for m in run.metrics)
    assert sorted(int(out.split()[0]) for out, _ in outputs) == [0, 0, total]
    for run in runs:
        _assert_same_points(_reader(out.joinpath(*run.name.split("/"))), run)


def test_a_failed_run_ends_its_hparams_session_as_a_failure(tmp_path):
    root = tmp_path / "root"
    with pytest.raises(RuntimeError), expq.Experiment("broken", root=root, sources=False,
                                                      capture_output=False) as exp:
        exp.log_scalar("loss", 1.0)
        raise RuntimeError("diverged")
    out = tmp_path / "tb"
    export_tensorboard(select_runs(["broken"], root), out)
    _, end = _session(_reader(out / exp.path.name))
    assert end.status == api_pb2.STATUS_FAILURE
