"""``expq submit``: what ends up in the specs (names, run dirs, configs, commands, options)."""
from __future__ import annotations

import getpass
import json
import os
import time
from pathlib import Path

import pytest

from expq.launcher.cli import main
from expq.launcher.submit import default_name
from expq.queue.spec import JobSpec
from expq.queue.states import State
from expq.queue.store import JobQueue


@pytest.fixture
def root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EXPQ_ROOT", raising=False)
    return tmp_path / "root"


def submit(capsys: pytest.CaptureFixture[str], root: Path, *argv: str) -> list[JobSpec]:
    code = main(["--root", str(root), "submit", *argv])
    out, err = capsys.readouterr()
    assert (code, err) == (0, "")
    queue = JobQueue(root)
    ids = [int(line) for line in out.splitlines()]
    return [queue.get(job)[1] for job in ids]


def test_one_job_with_defaults(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = time.time()
    (spec,) = submit(capsys, root, "--", "python", "train.py", "--lr", "0.1")
    assert spec.id == 1 and spec.command == ("python", "train.py", "--lr", "0.1")
    assert (spec.experiment, spec.name, spec.run_dir) == ("default", "train.py", "experiments/default/1-train.py")
    assert spec.cwd == os.getcwd() and spec.config == {} and spec.env == {} and spec.after == ()
    assert (spec.gpus, spec.priority, spec.retries, spec.timeout) == (0, 0, 0, None)
    assert spec.user == getpass.getuser() and before <= spec.submitted_at <= time.time()


def test_every_option_lands_in_the_spec(root: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (first,) = submit(capsys, root, "--", "true")
    Path("base.yaml").write_text("model:\n  layers: 2\n  act: relu\nlr: 0.1\n")
    Path("over.json").write_text('{"model": {"layers": 4}}')
    work = tmp_path / "work dir"
    work.mkdir()
    (spec,) = submit(capsys, root, "--experiment", "mnist", "--name", "big", "--config", "base.yaml",
                     "--config", "over.json", "--set", "lr=3e-4", "--set", "model.dropout=0.5", "--gpus", "2",
                     "--priority", "-7", "--retries", "3", "--timeout", "90.5", "--after", str(first.id),
                     "--env", "WANDB_MODE=offline", "--env", "EMPTY=", "--cwd", str(work),
                     "--", "python", "train.py", "--layers={model.layers}", "{lr}")
    assert spec.config == {"model": {"layers": 4, "act": "relu", "dropout": 0.5}, "lr": 3e-4}
    assert spec.command == ("python", "train.py", "--layers=4", "0.0003")
    assert (spec.experiment, spec.name, spec.run_dir) == ("mnist", "big", "experiments/mnist/2-big")
    assert (spec.gpus, spec.priority, spec.retries, spec.timeout, spec.after) == (2, -7, 3, 90.5, (1,))
    assert spec.env == {"WANDB_MODE": "offline", "EMPTY": ""} and spec.cwd == str(work)
    # the file name carries the priority, so the sorted listing is the schedule: priority -7 runs last;
    # job 2 waits for job 1 in after/
    assert JobQueue(root).list_names(State.PENDING) == ["cpu/09999/00000001.json", "after/10006/00000002.json"]


def test_sweep_is_the_cartesian_product_first_key_slowest(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    specs = submit(capsys, root, "--experiment", "grid", "--set", "epochs=3", "--sweep", "lr=0.1,0.01",
                   "--sweep", "model.depth=range(1,4)", "--", "train", "--lr", "{lr}", "--depth", "{model.depth}")
    assert [s.id for s in specs] == list(range(1, 7))
    assert [(s.config["lr"], s.config["model"]["depth"]) for s in specs] == [
        (0.1, 1), (0.1, 2), (0.1, 3), (0.01, 1), (0.01, 2), (0.01, 3)]
    assert all(s.config["epochs"] == 3 for s in specs)
    assert specs[4].command == ("train", "--lr", "0.01", "--depth", "2")
    assert specs[4].name == "lr=0.01,model.depth=2"
    assert specs[4].run_dir == "experiments/grid/5-lr=0.01,model.depth=2"
    assert len({s.run_dir for s in specs}) == 6


def test_name_and_sweep_combine(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    specs = submit(capsys, root, "--name", "base", "--sweep", "seed=1,2", "--", "echo", "{seed}")
    assert [s.name for s in specs] == ["base-seed=1", "base-seed=2"]


def test_same_name_twice_gives_distinct_run_dirs(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (a,) = submit(capsys, root, "--name", "x", "--", "true")
    (b,) = submit(capsys, root, "--name", "x", "--", "true")
    assert a.run_dir != b.run_dir and (a.id, b.id) == (1, 2)


def test_command_without_double_dash_and_with_its_own(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (a,) = submit(capsys, root, "--gpus", "1", "echo", "hi", "--gpus", "2")
    (b,) = submit(capsys, root, "--", "bash", "-c", "echo $0 -- $1", "--", "x")
    assert a.command == ("echo", "hi", "--gpus", "2") and a.gpus == 1
    assert b.command == ("bash", "-c", "echo $0 -- $1", "--", "x")


@pytest.mark.parametrize(("argv", "name"), [
    (["python", "train.py"], "train.py"),
    (["python3.11", "-u", "scripts/train.py", "--lr", "1"], "train.py"),
    (["python", "-m", "pkg.train"], "pkg.train"),
    (["/usr/bin/env", "FOO=1", "./run.sh"], "run.sh"),
    (["torchrun", "--nproc_per_node", "2", "train.py"], "train.py"),
    (["uv", "run", "python", "bench.py"], "bench.py"),
    (["./run", "--fast"], "run"),
    (["accelerate", "launch", "--num_processes=2", "ft.py"], "ft.py"),
    (["./a b c"], "a_b_c"),
    (["sleep", "10"], "sleep"),
    (["python"], "python"),
])
def test_default_name_is_the_script(argv: list[str], name: str) -> None:
    assert default_name(argv) == name


def test_config_values_keep_their_types_in_the_spec(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (spec,) = submit(capsys, root, "--set", "a=1", "--set", "b=true", "--set", "c=null", "--set", "d=[1, x]",
                     "--set", "e='007'", "--", "true")
    raw = json.loads(JobQueue(root).paths.job_file(State.PENDING, spec.id).read_text())
    assert raw["config"] == {"a": 1, "b": True, "c": None, "d": [1, "x"], "e": "007"}


def test_submit_creates_a_private_queue(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = os.umask(0o002)
    try:
        submit(capsys, root, "--", "true")
    finally:
        os.umask(old)
    JobQueue(root).check_secure()


def test_root_from_environment_and_default(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EXPQ_ROOT", str(tmp_path / "env-root"))
    assert main(["submit", "--", "true"]) == 0
    monkeypatch.delenv("EXPQ_ROOT")
    assert main(["submit", "--", "true"]) == 0
    assert main(["submit", "--root", "after", "--", "true"]) == 0
    assert main(["--root", "before", "submit", "--", "true"]) == 0
    capsys.readouterr()
    for root in ("env-root", "expq-root", "after", "before"):
        assert JobQueue(tmp_path / root).list_ids(State.PENDING) == [1], root


def test_a_10000_job_sweep_is_written_in_one_process(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["--root", str(root), "submit", "--sweep", "a=range(0,100)", "--sweep", "b=range(0,100)",
                 "--", "echo", "{a}", "{b}"])
    out, _ = capsys.readouterr()
    assert code == 0 and out.split() == [str(i) for i in range(1, 10_001)]
    queue = JobQueue(root)
    assert len(queue.list_names(State.PENDING)) == 10_000
    assert queue.get(10_000)[1].command == ("echo", "99", "99")


def test_after_experiment_read_by_forked_helpers(root: Path, capsys: pytest.CaptureFixture[str],
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's ``--after-experiment`` reads specs in blocks (of 2 here) shared with forked helpers (one per
    further CPU; none on one CPU): every job of the experiment, whatever its state, and no other."""
    from expq.queue import selection

    monkeypatch.setattr(selection, "_BLOCK", 2)
    first = submit(capsys, root, "--experiment", "first", "--sweep", "i=range(7)", "--", "true")
    submit(capsys, root, "--experiment", "other", "--sweep", "i=range(4)", "--", "true")
    assert JobQueue(root).move(first[2], State.PENDING, State.CANCELLED)
    (after,) = submit(capsys, root, "--after-experiment", "first", "--", "true")
    assert sorted(after.after) == [spec.id for spec in first]
