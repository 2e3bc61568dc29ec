"""Point 7: inside a job started by ``expq worker`` the API writes into the job's run directory.

The worker's environment is reproduced by hand here (the lead adds an end-to-end test through
the real worker): EXPQ_ROOT, EXPQ_JOB_ID, EXPQ_RUN_DIR, EXPQ_EXPERIMENT and EXPQ_CONFIG.
"""
from __future__ import annotations

import json
from pathlib import Path

from experiment_scripts import run_script

import expq
from expq.experiment.env import current_job, load_job_config

SCRIPT = """
import expq

exp = expq.Experiment("mnist")
exp.add_config({"lr": 0.1, "epochs": 2, "model": {"depth": 1}})

@exp.capture
def train(lr, epochs, model):
    for epoch in range(epochs):
        exp.log_scalar("loss", lr / (epoch + 1))
    exp.save({"lr": lr, "depth": model["depth"]}, "summary")
    print("trained with", lr)
    return lr

train()
assert expq.get_experiment() is exp
"""


def _job_dir(root: Path, job_id: int) -> Path:
    run_dir = root / "experiments" / "mnist" / f"{job_id}"
    run_dir.mkdir(parents=True)
    for name in ("job.json", "result.json"):
        (run_dir / name).write_text(json.dumps({"id": job_id, "state": "running"}))
    (run_dir / "config.yaml").write_text("lr: 0.5\nmodel:\n  depth: 4\n")
    (run_dir / "stdout.log").write_text("worker header\n")
    return run_dir


def _env(root: Path, run_dir: Path, job_id: int) -> dict[str, str]:
    return {"EXPQ_ROOT": str(root), "EXPQ_JOB_ID": str(job_id), "EXPQ_RUN_DIR": str(run_dir),
            "EXPQ_EXPERIMENT": "mnist", "EXPQ_CONFIG": str(run_dir / "config.yaml")}


def test_a_queued_script_saves_and_logs_into_the_job_run_dir(tmp_path: Path) -> None:
    root = tmp_path / "root"
    run_dir = _job_dir(root, 7)
    before = {name: (run_dir / name).read_text() for name in ("job.json", "result.json", "config.yaml", "stdout.log")}
    done = run_script(tmp_path, SCRIPT, env=_env(root, run_dir, 7))
    assert "trained with 0.5" in done.stdout
    # the job's config wins over the script's defaults and is deep-merged with them
    assert json.loads((run_dir / "files" / "summary.json").read_text()) == {"lr": 0.5, "depth": 4}
    assert (run_dir / "metrics" / "loss.csv").read_text().count("\n") == 3
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["job_id"] == 7 and meta["state"] == "done" and meta["config"]["lr"] == 0.5
    # the worker's files are untouched and no second capture of stdout/stderr was added
    assert {name: (run_dir / name).read_text() for name in before} == before
    assert not (run_dir / "stderr.log").exists()
    assert sorted(p.name for p in (root / "experiments" / "mnist").iterdir()) == ["7"]
    stored = expq.open(run_dir)
    assert stored.state == "running"  # result.json is the worker's verdict
    assert stored.load_scalar("loss")["value"].tolist() == [0.5, 0.25]


def test_get_experiment_in_a_job_binds_without_a_name(tmp_path: Path) -> None:
    root = tmp_path / "root"
    run_dir = _job_dir(root, 3)
    code = """
        import expq
        exp = expq.get_experiment()
        exp.log_scalar("acc", 0.9)
        exp.save("hello", "note")
        print(exp.name, exp.job_id, exp.config["lr"])
    """
    done = run_script(tmp_path, code, env=_env(root, run_dir, 3))
    assert done.stdout.split() == ["mnist", "3", "0.5"]
    assert (run_dir / "files" / "note.txt").read_text() == "hello"
    assert (run_dir / "metrics" / "acc.csv").exists()


def test_same_script_by_hand_uses_its_own_run_dir(tmp_path: Path) -> None:
    done = run_script(tmp_path, SCRIPT)
    assert "trained with 0.1" in done.stdout
    runs = list((tmp_path / "expq-root" / "experiments" / "mnist").iterdir())
    assert len(runs) == 1 and (runs[0] / "files" / "summary.json").exists()
    assert "trained with 0.1" in (runs[0] / "stdout.log").read_text()


def test_env_reader_knows_the_contract(tmp_path: Path) -> None:
    assert current_job({}) is None
    job = current_job({"EXPQ_RUN_DIR": str(tmp_path), "EXPQ_JOB_ID": "12", "EXPQ_EXPERIMENT": "e",
                       "EXPQ_CONFIG": str(tmp_path / "config.yaml"), "EXPQ_ROOT": "/r"})
    assert job is not None and job.job_id == 12 and job.experiment == "e" and job.root == Path("/r")
    assert load_job_config(job) == {}


def test_job_config_is_read_in_the_one_dialect(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("lr: 1e-3\nday: 2024-01-02\nname: '1e-3'\n")
    job = current_job({"EXPQ_RUN_DIR": str(tmp_path), "EXPQ_CONFIG": str(tmp_path / "config.yaml")})
    assert job is not None and job.job_id is None
    assert load_job_config(job) == {"lr": 0.001, "day": "2024-01-02", "name": "1e-3"}
