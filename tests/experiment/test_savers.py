"""Point 2: saving by type, versions decided on disk, overwrite, safe names, load, no references kept."""
from __future__ import annotations

import gc
import importlib.util
import multiprocessing
import threading
import weakref
from pathlib import Path

import numpy as np
import pytest

import expq
from expq.errors import InputError, NotFound


def _exp(tmp_path: Path) -> expq.Experiment:
    return expq.Experiment("s", root=tmp_path / "root", capture_output=False, sources=False)


@pytest.mark.parametrize(
    ("obj", "file_name"),
    [
        ({"a": 1, "b": [1, 2.5, None]}, "x.json"),
        ([1, "two", 3.0], "x.json"),
        (3, "x.json"),
        (2.5, "x.json"),
        (True, "x.json"),
        (None, "x.json"),
        ("some text", "x.txt"),
        (b"\x00\x01bytes", "x.bin"),
    ],
)
def test_builtin_types_round_trip(tmp_path: Path, obj: object, file_name: str) -> None:
    exp = _exp(tmp_path)
    path = exp.save(obj, "x")
    assert path.name == file_name and path.parent == exp.path / "files"
    assert exp.load("x") == obj
    assert expq.open(exp.path).load("x") == obj


def test_tuple_is_saved_as_json_list(tmp_path: Path) -> None:
    exp = _exp(tmp_path)
    exp.save((1, 2), "t")
    assert exp.load("t") == [1, 2]


def test_numpy_array_and_scalar(tmp_path: Path) -> None:
    exp = _exp(tmp_path)
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert exp.save(array, "weights").name == "weights.npy"
    loaded = exp.load("weights")
    assert loaded.dtype == np.float32 and np.array_equal(loaded, array)
    exp.save(np.int64(7), "count")
    assert exp.load("count") == 7
    exp.save({"arr": np.array([1, 2]), "v": np.float32(0.5)}, "mixed")
    assert exp.load("mixed") == {"arr": [1, 2], "v": 0.5}


@pytest.mark.parametrize(("name", "expected", "magic"), [
    ("fig", "fig.png", b"\x89PNG"), ("fig.pdf", "fig.pdf", b"%PDF"), ("fig.svg", "fig.svg", b"<?xml"),
])
def test_matplotlib_figure_formats(tmp_path: Path, name: str, expected: str, magic: bytes) -> None:
    from matplotlib.figure import Figure

    figure = Figure()
    figure.add_subplot().plot([1, 2, 3])
    exp = _exp(tmp_path)
    path = exp.save(figure, name)
    assert path.name == expected and path.read_bytes().startswith(magic)
    if expected.endswith(".png"):
        assert exp.load("fig").ndim == 3


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_torch_tensor_and_module(tmp_path: Path) -> None:  # pragma: no cover - needs torch
    import torch

    exp = _exp(tmp_path)
    exp.save(torch.arange(4), "t")
    assert torch.equal(exp.load("t"), torch.arange(4))
    module = torch.nn.Linear(2, 3)
    assert exp.save(module, "model").name == "model.pt"
    state = exp.load("model")
    assert torch.equal(state["weight"], module.weight.detach())


def test_versions_then_overwrite(tmp_path: Path) -> None:
    exp = _exp(tmp_path)
    assert exp.save({"v": 0}, "cfg").name == "cfg.json"
    assert exp.save({"v": 1}, "cfg").name == "cfg_1.json"
    assert exp.save({"v": 2}, "cfg").name == "cfg_2.json"
    assert exp.load("cfg") == {"v": 0} and exp.load("cfg_2") == {"v": 2}
    assert exp.save({"v": 9}, "cfg", overwrite=True).name == "cfg.json"
    assert exp.load("cfg") == {"v": 9}
    assert exp.load("cfg.json") == {"v": 9}
    assert not [p for p in (exp.path / "files").iterdir() if p.name.startswith(".")]


def test_slash_makes_subfolders_inside_the_run(tmp_path: Path) -> None:
    exp = _exp(tmp_path)
    path = exp.save([1], "epoch_3/preds")
    assert path == exp.path / "files" / "epoch_3" / "preds.json"
    assert exp.load("epoch_3/preds") == [1]
    assert expq.open(exp.path).files == ["epoch_3/preds.json"]


@pytest.mark.parametrize("name", ["/etc/passwd", "../escape", "a/../../b", "a/./b", "nul\x00l", "", "a//b", "a\\b"])
def test_unsafe_names_are_refused_and_nothing_written(tmp_path: Path, name: str) -> None:
    exp = _exp(tmp_path)
    with pytest.raises(InputError):
        exp.save({"x": 1}, name)
    assert not (exp.path / "files").exists() or not any((exp.path / "files").rglob("*"))
    assert not (tmp_path / "escape").exists()


def test_unknown_type_is_a_clear_error_and_pickle_is_explicit(tmp_path: Path) -> None:
    class Thing:
        def __init__(self) -> None:
            self.value = 3

    exp = _exp(tmp_path)
    with pytest.raises(InputError, match=r"no saver for objects of type .*Thing.*add_saver.*save_pickle"):
        exp.save(Thing(), "thing")
    with pytest.raises(InputError, match="save_pickle"):
        exp.save({"obj": object()}, "bad")
    path = exp.save_pickle(Pickled(5), "thing")
    assert path.name == "thing.pkl" and exp.load("thing").value == 5


class Pickled:
    def __init__(self, value: int) -> None:
        self.value = value


def test_add_saver_takes_precedence_and_loads_back(tmp_path: Path) -> None:
    exp = _exp(tmp_path)
    exp.add_saver(Pickled, lambda obj, path: path.write_text(str(obj.value)), "val",
                  loader=lambda path: Pickled(int(path.read_text())))
    assert exp.save(Pickled(42), "p").name == "p.val"
    assert exp.load("p").value == 42
    exp.add_saver(dict, lambda obj, path: path.write_text("custom"), "cust")
    assert exp.save({"a": 1}, "d").read_text() == "custom"


def test_ambiguous_and_missing_loads(tmp_path: Path) -> None:
    exp = _exp(tmp_path)
    exp.save("text", "same")
    exp.save({"a": 1}, "same")
    with pytest.raises(InputError, match="several files"):
        exp.load("same")
    assert exp.load("same.txt") == "text"
    with pytest.raises(NotFound):
        exp.load("never")


def test_nothing_saved_is_kept_alive(tmp_path: Path) -> None:
    from matplotlib.figure import Figure

    exp = _exp(tmp_path)
    array = np.zeros(1000)
    figure = Figure()
    refs = [weakref.ref(array), weakref.ref(figure)]
    exp.save(array, "a")
    exp.save(figure, "f")
    del array, figure
    gc.collect()
    assert all(ref() is None for ref in refs)


def _save_many(run_dir: str, worker: int, count: int) -> None:
    exp_files = Path(run_dir) / "files"
    from expq.experiment.files import save_object
    from expq.experiment.savers import SaverRegistry

    registry = SaverRegistry()
    for index in range(count):
        save_object(registry, exp_files, {"worker": worker, "index": index}, "shared")


def test_concurrent_versioning_across_processes_never_collides(tmp_path: Path) -> None:
    exp = _exp(tmp_path)
    context = multiprocessing.get_context("spawn")
    procs = [context.Process(target=_save_many, args=(str(exp.path), w, 25)) for w in range(4)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(60)
        assert proc.exitcode == 0
    saved = sorted((exp.path / "files").glob("shared*.json"))
    assert len(saved) == 100
    contents = {(d["worker"], d["index"]) for d in (exp.load(p.name) for p in saved)}
    assert len(contents) == 100


def test_overwrite_is_atomic_for_a_concurrent_reader(tmp_path: Path) -> None:
    exp = _exp(tmp_path)
    exp.save(np.zeros(200_000), "big")
    path = exp.path / "files" / "big.npy"
    done = threading.Event()
    seen: list[float] = []
    errors: list[BaseException] = []

    def reader() -> None:
        try:
            while not done.is_set():
                loaded = np.load(path)
                assert loaded.shape == (200_000,) and loaded.min() == loaded.max()
                seen.append(float(loaded[0]))
        except BaseException as error:  # noqa: BLE001 -- re-raised in the test thread below
            errors.append(error)

    thread = threading.Thread(target=reader)
    thread.start()
    try:
        for value in range(1, 40):
            exp.save(np.full(200_000, value, dtype=float), "big", overwrite=True)
    finally:
        done.set()
        thread.join(30)
    if errors:
        raise errors[0]
    assert seen and np.load(path)[0] == 39
