"""Point 4: config merging, files, run precedence and injection by capture."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import expq
from expq.errors import InputError
from expq.experiment.config import deep_merge, load_config


def _exp(tmp_path: Path) -> expq.Experiment:
    return expq.Experiment("c", root=tmp_path / "root", capture_output=False, sources=False)


def test_deep_merge_is_recursive_and_pure() -> None:
    base = {"a": {"b": 1, "c": 2}, "d": 3}
    merged = deep_merge(base, {"a": {"c": 20, "e": 5}})
    assert merged == {"a": {"b": 1, "c": 20, "e": 5}, "d": 3}
    assert base == {"a": {"b": 1, "c": 2}, "d": 3}


def test_add_config_from_dict_yaml_and_json(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("model:\n  depth: 3\n  width: 8\nlr: 0.1\n")
    (tmp_path / "b.json").write_text(json.dumps({"model": {"depth": 5}}))
    exp = _exp(tmp_path)
    exp.add_config(tmp_path / "a.yaml")
    exp.add_config(str(tmp_path / "b.json"))
    exp.add_config({"seed": 1, "model.width": 16})
    assert exp.config == {"model": {"depth": 5, "width": 16}, "lr": 0.1, "seed": 1}
    exp.close()
    assert expq.open(exp.path).config["model"] == {"depth": 5, "width": 16}


@pytest.mark.parametrize(("content", "name", "error"), [
    ("[1, 2]", "x.yaml", InputError), ("a: [", "x.yaml", InputError), ("{", "x.json", InputError),
    ("a: 1\na: 2", "x.yml", InputError),
])
def test_bad_config_files_are_clear_errors(tmp_path: Path, content: str, name: str, error: type) -> None:
    (tmp_path / name).write_text(content)
    with pytest.raises(error, match="config file"):
        load_config(tmp_path / name)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read config file .*nope.yaml': No such file or directory"):
        load_config(tmp_path / "nope.yaml")


def test_add_config_file_reads_the_cli_dialect(tmp_path: Path) -> None:
    """Issue 10 item 2: ``lr: 1e-3`` is a float and dates stay strings, as with ``expq submit --config``."""
    (tmp_path / "c.yaml").write_text("lr: 1e-3\nday: 2024-01-02\nsteps: 3e4\n")
    exp = _exp(tmp_path)
    exp.add_config(tmp_path / "c.yaml")
    assert exp.config == {"lr": 0.001, "day": "2024-01-02", "steps": 30000.0}
    exp.close()
    assert expq.open(exp.path).config == {"lr": 0.001, "day": "2024-01-02", "steps": 30000.0}


def test_stored_job_config_reads_the_cli_dialect(tmp_path: Path) -> None:
    run_dir = tmp_path / "root" / "experiments" / "e" / "1"
    run_dir.mkdir(parents=True)
    (run_dir / "job.json").write_text("{}")
    (run_dir / "config.yaml").write_text("lr: 1e-3\nday: 2024-01-02\n")
    assert expq.open(run_dir).config == {"lr": 0.001, "day": "2024-01-02"}


def test_run_config_wins_inside_the_run_only(tmp_path: Path) -> None:
    exp = _exp(tmp_path)
    exp.add_config({"lr": 0.1, "opt": {"name": "sgd", "momentum": 0.9}})
    seen: dict[str, Any] = {}

    def train() -> None:
        exp.add_config({"opt": {"momentum": 0.5}})
        seen.update(exp.config)

    exp.run(train, lr=0.01)
    assert seen == {"lr": 0.01, "opt": {"name": "sgd", "momentum": 0.5}}
    assert exp.config == {"lr": 0.1, "opt": {"name": "sgd", "momentum": 0.9}}
    meta = json.loads((exp.path / "runs" / "train_lr=0.01" / "run.json").read_text())
    assert meta["config"] == seen


def test_capture_injects_by_name_and_explicit_arguments_win(tmp_path: Path) -> None:
    exp = _exp(tmp_path)
    exp.add_config({"lr": 0.1, "epochs": 3, "extra": "x"})

    @exp.capture
    def fit(data: str, lr: float = 1.0, epochs: int = 1) -> tuple[str, float, int]:
        return data, lr, epochs

    assert fit("d") == ("d", 0.1, 3)
    assert fit("d", 0.5) == ("d", 0.5, 3)
    assert fit("d", epochs=9) == ("d", 0.1, 9)
    exp.add_config({"lr": 0.2})
    assert fit("d") == ("d", 0.2, 3)  # looked up at call time


def test_capture_prefixes_and_kwargs(tmp_path: Path) -> None:
    exp = _exp(tmp_path)
    exp.add_config({"model": {"lr": 0.1, "depth": 2}, "data": {"path": "/d", "lr": 99}, "seed": 7})

    @exp.capture(prefixes=["model", "data.path"])
    def build(lr: float, path: str, **rest: Any) -> tuple[float, str, dict[str, Any]]:
        return lr, path, rest

    lr, path, rest = build()
    assert (lr, path) == (0.1, "/d")
    assert rest == {"model": {"lr": 0.1, "depth": 2}, "depth": 2}

    @exp.capture()
    def everything(seed: int, **kwargs: Any) -> dict[str, Any]:
        return {"seed": seed, **kwargs}

    assert everything() == {"seed": 7, "model": {"lr": 0.1, "depth": 2}, "data": {"path": "/d", "lr": 99}}
    assert everything(seed=1, model="explicit")["model"] == "explicit"


def test_missing_key_uses_the_function_default_or_raises(tmp_path: Path) -> None:
    exp = _exp(tmp_path)
    exp.add_config({"a": 1})

    @exp.capture
    def f(a: int, b: int = 5) -> int:
        return a + b

    @exp.capture(prefixes=["nowhere"])
    def g(c: int) -> int:
        return c

    assert f() == 6
    with pytest.raises(InputError, match=r"g\(\) needs 'c': not passed and not found in prefixes \['nowhere'\]"):
        g()
    assert g(3) == 3


def test_injected_values_are_copies(tmp_path: Path) -> None:
    exp = _exp(tmp_path)
    exp.add_config({"items": [1, 2]})

    @exp.capture
    def mutate(items: list[int]) -> list[int]:
        items.append(3)
        return items

    assert mutate() == [1, 2, 3]
    assert mutate() == [1, 2, 3]
    assert exp.config["items"] == [1, 2]


def test_command_receives_run_overrides(tmp_path: Path) -> None:
    exp = _exp(tmp_path)
    exp.add_config({"lr": 0.1, "bs": 32})

    @exp.command
    def train(lr: float, bs: int) -> tuple[float, int]:
        return lr, bs

    assert exp.run("train") == (0.1, 32)
    assert exp.run("train", lr=0.5) == (0.5, 32)
    assert exp.run(train, bs=8) == (0.1, 8)


def test_a_captured_function_is_not_captured_twice_by_run(tmp_path: Path) -> None:
    exp = _exp(tmp_path)
    exp.add_config({"model": {"width": 4}})

    @exp.capture(prefixes=["model"])
    def build(width: int) -> int:
        return width

    assert exp.run(build) == 4
    assert exp.run(exp.add_command(build)) == 4
