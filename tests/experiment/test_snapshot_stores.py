"""Issue 10 item 9: the source snapshot leaves out every store of runs, whatever its name."""
from __future__ import annotations

from pathlib import Path

import pytest
from experiment_scripts import only_run, run_script

from expq.experiment.sources import snapshot_sources


def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


STORES = {
    # a second root made by hand: experiments/<name>/<run>/ with run.json and run.log
    "root-api/experiments/e/r1/run.json": "{}",
    "root-api/experiments/e/r1/run.log": "",
    "root-api/experiments/e/r1/sources/train.py": "",
    "root-api/notes.md": "inside a root: left out too",
    # a root that only has a queue yet
    "q-only/queue/next_id": "3",
    "q-only/queue/pending/00001.json": "{}",
    # run directories written by a worker, copied somewhere under another name
    "backup/7/job.json": "{}",
    "backup/7/run.env": "",
    "backup/7/config.yaml": "lr: 1\n",
    "backup/readme.txt": "a folder of runs",
}
KEPT = {
    "train.py": "x = 1\n",
    # names that only look like run files are ordinary project files
    "experiments/mnist/result.json": "{}",
    "experiments/mnist/job.json": "{}",
    "experiments/run.py": "",
    "conf/queue/next.yaml": "a: 1\n",
}


def test_snapshot_leaves_out_roots_and_folders_of_runs(tmp_path: Path) -> None:
    project = tmp_path / "project"
    _write(project, {**STORES, **KEPT})
    copied = snapshot_sources(project, tmp_path / "out")
    assert sorted(copied) == sorted(KEPT)


@pytest.mark.parametrize("inner", ["experiments/e/r/run.json", "queue/next_id"])
def test_a_root_that_is_the_project_loses_only_its_store(tmp_path: Path, inner: str) -> None:
    project = tmp_path / "project"
    _write(project, {"train.py": "", inner: "1", str(Path(inner).parent / "run.log"): ""})
    assert snapshot_sources(project, tmp_path / "out") == ["train.py"]


def test_an_experiment_ignores_another_root_in_its_project(tmp_path: Path) -> None:
    project = tmp_path / "project"
    _write(project, {**STORES, "train.py": "x = 1\n"})
    code = """
        import expq
        expq.Experiment("snap", root="results", capture_output=False).close()
    """
    run_script(project, code, name="main.py")
    run = only_run(project / "results", "snap")
    copied = sorted(str(p.relative_to(run / "sources")) for p in (run / "sources").rglob("*") if p.is_file())
    assert copied == ["main.py", "train.py"]
