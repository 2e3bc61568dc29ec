"""``expq export mlflow`` into a ``file:`` store, read back with MLflow's own ``MlflowClient``."""
from __future__ import annotations

import math
import socket
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

import expq
from expq.experiment.config import flatten
from expq.launcher.cli import main


@pytest.fixture(autouse=True)
def _no_file_store_flag(monkeypatch):
    """The exporter must set MLflow's file-store flag itself; whatever it sets is undone afterwards."""
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)


def _export(root: Path, store: Path, capsys) -> tuple[int, str, str]:
    code = main(["--root", str(root), "export", "mlflow", "sweep", "--tracking-uri", f"file:{store}"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_export_matches_the_runs_and_a_second_export_duplicates_nothing(sweep_root, tmp_path, capsys):
    store = tmp_path / "mlruns"
    code, out, err = _export(sweep_root, store, capsys)
    assert code == 0, err
    assert "MLFLOW_ALLOW_FILE_STORE=true" in err
    assert "2 NaN or inf points skipped" in out
    runs = expq.open(sweep_root / "experiments" / "sweep").all_runs()
    client = MlflowClient(tracking_uri=store.as_uri())
    experiment = client.get_experiment_by_name("sweep")
    found = {r.data.tags["expq.run_id"]: r for r in client.search_runs([experiment.experiment_id])}
    assert sorted(found) == sorted(f"sweep/{run.name}" for run in runs)
    histories = {}
    for run in runs:
        mlflow_run = found[f"sweep/{run.name}"]
        assert mlflow_run.info.run_name == run.name
        assert mlflow_run.info.status == "FINISHED"
        assert mlflow_run.data.params == {k: str(v) for k, v in flatten(run.config).items()}
        assert mlflow_run.data.tags["expq.state"] == "done"
        if "/" in run.name:
            parent = found[f"sweep/{run.name.rsplit('/', 1)[0]}"]
            assert mlflow_run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        else:
            assert mlflow_run.data.tags["expq.job_id"] == str(run.job_result["job_id"])
            assert mlflow_run.data.tags["expq.host"] == socket.gethostname()
            assert [a.path for a in client.list_artifacts(mlflow_run.info.run_id)] == run.files
        for metric in run.metrics:
            stored = [(s, v, t) for s, v, t in run.load_scalar(metric).tolist() if math.isfinite(v)]
            history = client.get_metric_history(mlflow_run.info.run_id, metric)
            assert [(m.step, m.value, m.timestamp) for m in history] == [
                (s, v, int(round(t * 1000))) for s, v, t in stored]
            histories[(run.name, metric)] = len(history)

    code, out, err = _export(sweep_root, store, capsys)
    assert code == 0, err
    assert out.startswith("0 MLflow runs created, 6 updated, 0 new metric points, 0 files uploaded")
    again = client.search_runs([experiment.experiment_id])
    assert len(again) == len(runs)
    for mlflow_run in again:
        name = mlflow_run.data.tags["expq.run"]
        for metric in mlflow_run.data.metrics:
            assert len(client.get_metric_history(mlflow_run.info.run_id, metric)) == histories[(name, metric)]


def test_an_unreachable_server_is_exit_1_and_writes_nothing(sweep_root, tmp_path, capsys):
    with socket.socket() as sock:  # a port nothing listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        code = main(["--root", str(sweep_root), "export", "mlflow", "sweep", "--tracking-uri",
                     f"http://127.0.0.1:{port}"])
    captured = capsys.readouterr()
    assert code == 1 and captured.out == ""
    assert captured.err.startswith(f"expq: error: cannot reach the MLflow tracking server http://127.0.0.1:{port}")
    assert captured.err.count("\n") == 1


@pytest.mark.parametrize("case", ["store-is-a-file", "unknown-experiment", "no-uri"])
def test_bad_input_is_exit_2_and_writes_nothing(sweep_root, tmp_path, capsys, case):
    store = tmp_path / "mlruns"
    argv = ["--root", str(sweep_root), "export", "mlflow", "sweep", "--tracking-uri", f"file:{store}"]
    if case == "store-is-a-file":
        store.write_text("mine")
    elif case == "unknown-experiment":
        argv[4] = "nope"
    else:
        argv = argv[:-2]
    before = sorted(tmp_path.rglob("*"))
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.count("\n") == 1 and captured.err.startswith("expq: error: ")
    assert sorted(tmp_path.rglob("*")) == before


def test_a_running_experiment_exports_exactly_its_new_points_and_then_its_end(tmp_path, capsys):
    root, store = tmp_path / "root", tmp_path / "mlruns"
    argv = ["--root", str(root), "export", "mlflow", "growing", "--tracking-uri", f"file:{store}"]
    exp = expq.Experiment("growing", root=root, sources=False, capture_output=False, config={"lr": 0.1})
    for step in range(5):
        exp.log_scalar("loss", 1 / (step + 1))
    exp.flush()
    assert main(argv) == 0
    client = MlflowClient(tracking_uri=store.as_uri())
    (mlflow_run,) = client.search_runs([client.get_experiment_by_name("growing").experiment_id])
    assert mlflow_run.info.status == "RUNNING"
    assert capsys.readouterr().out.startswith("1 MLflow runs created, 0 updated, 5 new metric points")
    assert client.get_run(mlflow_run.info.run_id).data.tags["expq.points.loss"] == "5"
    client.delete_tag(mlflow_run.info.run_id, "expq.points.loss")  # then the history is what counts
    for step in range(3):
        exp.log_scalar("loss", 0.01 * step)
    exp.close()
    assert main(argv) == 0
    assert capsys.readouterr().out.startswith("0 MLflow runs created, 1 updated, 3 new metric points")
    history = client.get_metric_history(mlflow_run.info.run_id, "loss")
    assert [m.value for m in history] == _loss_values(exp.path)
    ended = client.get_run(mlflow_run.info.run_id)
    assert ended.info.status == "FINISHED" and ended.info.end_time is not None
    assert ended.data.tags["expq.points.loss"] == "8"


def _loss_values(path: Path) -> list[float]:
    return expq.open(path).load_scalar("loss")["value"].tolist()


def test_a_failed_run_is_a_failed_mlflow_run(tmp_path, capsys):
    root, store = tmp_path / "root", tmp_path / "mlruns"
    with pytest.raises(RuntimeError), expq.Experiment("broken", root=root, sources=False,
                                                      capture_output=False) as exp:
        exp.log_scalar("loss", 1.0)
        raise RuntimeError("diverged")
    assert main(["--root", str(root), "export", "mlflow", "broken", "--tracking-uri", f"file:{store}"]) == 0
    client = MlflowClient(tracking_uri=store.as_uri())
    (mlflow_run,) = client.search_runs([client.get_experiment_by_name("broken").experiment_id])
    assert mlflow_run.info.status == "FAILED" and mlflow_run.data.tags["expq.state"] == "failed"
    assert mlflow_run.data.metrics == {"loss": 1.0}
