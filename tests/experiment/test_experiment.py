"""Point 1: experiments, runs, nesting, failures recorded and re-raised, run metadata."""
from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
from pathlib import Path

import pytest
from experiment_scripts import child_env, only_run, run_script

import expq
from expq.errors import ExpqError, InputError


def _exp(tmp_path: Path, name: str = "exp", **kwargs: object) -> expq.Experiment:
    return expq.Experiment(name, root=tmp_path / "root", capture_output=False, sources=False, **kwargs)


def test_experiment_makes_a_run_dir_under_root(tmp_path: Path) -> None:
    exp = _exp(tmp_path)
    assert exp.path.parent == (tmp_path / "root" / "experiments" / "exp").resolve()
    meta = json.loads((exp.path / "run.json").read_text())
    assert meta["state"] == "running" and meta["experiment"] == "exp"
    exp.close()
    meta = json.loads((exp.path / "run.json").read_text())
    assert meta["state"] == "done" and meta["finished_at"]
    for key in ("host", "python", "argv", "started_at", "git", "pid", "cwd"):
        assert key in meta


def test_default_root_is_env_then_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exp = expq.Experiment("a", capture_output=False, sources=False)
    assert exp.path.is_relative_to((tmp_path / "expq-root").resolve())
    exp.close()
    monkeypatch.setenv("EXPQ_ROOT", str(tmp_path / "elsewhere"))
    exp = expq.Experiment("a", capture_output=False, sources=False)
    assert exp.path.is_relative_to((tmp_path / "elsewhere").resolve())


@pytest.mark.parametrize("name", ["", "..", "a/b", "x\x00y", ".hidden"])
def test_unsafe_experiment_names_are_refused(tmp_path: Path, name: str) -> None:
    with pytest.raises(InputError):
        _exp(tmp_path, name)
    assert not (tmp_path / "root" / "experiments").exists() or not any((tmp_path / "root" / "experiments").iterdir())


def test_several_experiments_in_one_process_and_get_experiment(tmp_path: Path) -> None:
    first = _exp(tmp_path, "first")
    second = _exp(tmp_path, "second")
    assert expq.get_experiment() is second
    assert expq.get_experiment("first") is first
    assert expq.getExperiment("second") is second
    first.log_scalar("x", 1)
    second.log_scalar("x", 2)
    second.close()
    assert expq.get_experiment() is first
    first.close()
    with pytest.raises(ExpqError, match="no experiment is open"):
        expq.get_experiment()


def test_context_manager_records_failure_and_reraises(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="boom"):
        with _exp(tmp_path) as exp:
            raise ValueError("boom")
    meta = json.loads((exp.path / "run.json").read_text())
    assert meta["state"] == "failed" and "boom" in meta["error"]
    assert "ValueError: boom" in (exp.path / "run.log").read_text()
    with pytest.raises(ExpqError, match="closed"):
        exp.log_scalar("x", 1)


def test_command_add_command_and_run_by_name_or_function(tmp_path: Path) -> None:
    exp = _exp(tmp_path)

    @exp.command
    def train(lr: float = 1.0) -> float:
        exp.log_scalar("loss", lr)
        return lr * 2

    def evaluate() -> str:
        return "ok"

    exp.add_command(evaluate, name="eval")
    assert exp.run("train", lr=0.5) == 1.0
    assert exp.run(train) == 2.0
    assert exp.run("eval") == "ok"
    assert exp.run(lambda: 3) == 3
    runs = sorted(p.name for p in (exp.path / "runs").iterdir())
    assert runs == ["eval", "lambda", "train", "train_lr=0.5"]
    with pytest.raises(InputError, match="no command"):
        exp.run("missing")


def test_nested_runs_get_nested_dirs_and_the_innermost_receives(tmp_path: Path) -> None:
    exp = _exp(tmp_path)

    def inner() -> None:
        exp.log_scalar("depth", 2)
        exp.save({"at": "inner"}, "where")

    def outer() -> None:
        exp.log_scalar("depth", 1)
        exp.run(inner)
        exp.save({"at": "outer"}, "where")

    exp.run(outer)
    exp.close()
    outer_dir = exp.path / "runs" / "outer"
    inner_dir = outer_dir / "runs" / "inner"
    assert json.loads((inner_dir / "files" / "where.json").read_text()) == {"at": "inner"}
    assert json.loads((outer_dir / "files" / "where.json").read_text()) == {"at": "outer"}
    run = expq.open(inner_dir)
    assert run.load_scalar("depth")["value"].tolist() == [2.0]
    assert run.name.endswith("outer/inner")
    assert json.loads((inner_dir / "run.json").read_text())["state"] == "done"


def test_a_failing_run_is_recorded_and_reraised(tmp_path: Path) -> None:
    exp = _exp(tmp_path)

    def broken() -> None:
        print("about to fail")
        raise RuntimeError("bad batch")

    with pytest.raises(RuntimeError, match="bad batch"):
        exp.run(broken)
    run_dir = exp.path / "runs" / "broken"
    meta = json.loads((run_dir / "run.json").read_text())
    assert meta["state"] == "failed" and meta["error"] == "RuntimeError: bad batch"
    log = (run_dir / "run.log").read_text()
    assert "Traceback" in log and "RuntimeError: bad batch" in log
    assert "end command broken: failed" in log
    exp.log_scalar("after", 1.0)  # the experiment goes on
    assert exp.current_run.path == exp.path


def test_run_metadata_records_git_commit_and_dirty_flag(tmp_path: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(git + ["init", "-q"], cwd=project, check=True)
    (project / "main.py").write_text("print(1)\n")
    subprocess.run(git + ["add", "."], cwd=project, check=True)
    subprocess.run(git + ["commit", "-qm", "init"], cwd=project, check=True)
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True).stdout.strip()
    code = """
        import expq
        exp = expq.Experiment("g", root="root", capture_output=False)
        exp.close()
    """
    run_script(project, code, name="train.py")  # untracked train.py: dirty
    meta = json.loads((only_run(project / "root", "g") / "run.json").read_text())
    assert meta["git"]["commit"] == commit and meta["git"]["dirty"] is True
    assert meta["argv"][0].endswith("train.py") and meta["state"] == "done"


def _make_experiment(root: str, barrier: object, queue: object) -> None:
    barrier.wait()  # type: ignore[attr-defined]
    exp = expq.Experiment("race", root=root, capture_output=False, sources=False)
    queue.put(str(exp.path))  # type: ignore[attr-defined]
    exp.close()


def test_sixteen_processes_same_name_same_second_all_get_distinct_dirs(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(16)
    queue = context.Queue()
    procs = [context.Process(target=_make_experiment, args=(str(tmp_path / "root"), barrier, queue)) for _ in range(16)]
    for proc in procs:
        proc.start()
    paths = [queue.get(timeout=60) for _ in procs]
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    assert len(set(paths)) == 16
    on_disk = [p for p in (tmp_path / "root" / "experiments" / "race").iterdir()]
    assert len(on_disk) == 16


def test_uncaught_exception_marks_experiment_failed(tmp_path: Path) -> None:
    code = """
        import expq
        exp = expq.Experiment("crash", root="root", capture_output=False, sources=False)
        exp.log_scalar("loss", 1.0)
        raise SystemError("uncaught")
    """
    done = run_script(tmp_path, code, check=False)
    assert done.returncode == 1 and "uncaught" in done.stderr
    run = only_run(tmp_path / "root", "crash")
    meta = json.loads((run / "run.json").read_text())
    assert meta["state"] == "failed" and "uncaught" in meta["error"]
    assert (run / "metrics" / "loss.csv").read_text().count("\n") == 2


def test_get_experiment_from_another_module(tmp_path: Path) -> None:
    (tmp_path / "helper_mod.py").write_text(
        "import expq\n\ndef log() -> None:\n    expq.get_experiment().save('from helper', 'note')\n"
    )
    code = """
        import expq, helper_mod
        exp = expq.Experiment("mods", root="root", capture_output=False, sources=False)
        helper_mod.log()
    """
    run_script(tmp_path, code)
    assert (only_run(tmp_path / "root", "mods") / "files" / "note.txt").read_text() == "from helper"


def test_create_experiment_alias(tmp_path: Path) -> None:
    exp = expq.createExperiment("alias", root=tmp_path / "root", capture_output=False, sources=False)
    assert isinstance(exp, expq.Experiment)
    assert sys.modules["expq"].get_experiment() is exp
    _ = child_env  # imported for symmetry with other tests
