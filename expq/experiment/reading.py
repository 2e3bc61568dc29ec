"""Read-only views of experiments and runs on disk, whoever wrote them (by hand or a worker).

``expq.open(path)`` returns a ``StoredRun`` for a run directory and a ``StoredExperiment`` for
an experiment directory (``<root>/experiments/<name>``). Nothing here writes.
"""
from __future__ import annotations

import logging
import os
import socket
from collections.abc import Callable, Sequence
from functools import cached_property
from pathlib import Path
from typing import Any

from expq._fs import pid_exists, read_json_object
from expq.config import load_config_file
from expq.contract import resolve_root
from expq.errors import InputError, NotFound
from expq.experiment import files, tree
from expq.experiment.metrics import list_metrics, read_scalar
from expq.experiment.savers import SaverRegistry

__all__ = ["StoredRun", "StoredExperiment", "open_path", "load_metric"]

log = logging.getLogger(__name__)


class StoredRun:
    """One run directory: its config, saved files, metrics, nested runs and outcome."""

    def __init__(self, path: Path, experiment_dir: Path | None = None) -> None:
        self.path = Path(path).resolve()
        top = self.path
        while top.parent.name == tree.RUNS and tree.is_run_dir(top.parent.parent):
            top = top.parent.parent
        self.experiment_dir = experiment_dir or top.parent
        rel = self.path.relative_to(self.experiment_dir).parts
        self.name = "/".join(part for index, part in enumerate(rel) if index % 2 == 0)

    def __repr__(self) -> str:
        return f"StoredRun({self.name!r}, state={self.state!r})"

    @cached_property
    def meta(self) -> dict[str, Any]:
        """``run.json`` written by the experiment API ({} for a job that never opened it)."""
        return read_json_object(self.path / tree.RUN_JSON) or {}

    @cached_property
    def job_result(self) -> dict[str, Any] | None:
        """``result.json`` written by the worker when the run is a queued job that ended."""
        return read_json_object(self.path / tree.RESULT_JSON)

    @property
    def state(self) -> str:
        """The worker's verdict for a queued job; else run.json's, with ``crashed`` for a dead pid."""
        if self.job_result and "state" in self.job_result:
            return str(self.job_result["state"])
        state = self.meta.get("state")
        if state is None:
            return "running" if (self.path / tree.JOB_JSON).exists() else "unknown"
        if state == "running" and self.meta.get("host") == socket.gethostname() and not _alive(self.meta.get("pid")):
            return "crashed"
        return str(state)

    @cached_property
    def config(self) -> dict[str, Any]:
        """The run's effective config: run.json's, else the job's config.yaml; ``{}`` if unreadable.

        A damaged run (a torn or hand-edited file) must not hide the others from a table, so it
        reads as empty, with a warning in the log.
        """
        if "config" in self.meta:
            if isinstance(self.meta["config"], dict):
                return dict(self.meta["config"])
            log.warning("run %s: the config in %s is not a mapping", self.name, tree.RUN_JSON)
            return {}
        path = self.path / tree.JOB_CONFIG
        if not os.path.lexists(path):
            return {}
        try:
            return load_config_file(path, "job config")
        except InputError as error:
            log.warning("run %s: %s", self.name, error)
            return {}

    @property
    def result(self) -> Any:
        """What the run's command returned (None if nothing or not recorded)."""
        if "result_file" in self.meta:
            return self.load(self.meta["result_file"])
        return self.meta.get("result")

    @property
    def metrics(self) -> list[str]:
        return list_metrics(self.path / tree.METRICS)

    @property
    def files(self) -> list[str]:
        return files.list_files(self.path / tree.FILES)

    def load(self, name: str, loader: Callable[[Path], Any] | None = None) -> Any:
        """Read back a saved object (by name, with or without its extension).

        The reader is ``loader`` if given, else one registered for the file's extension
        (``add_saver(..., loader=...)`` in this process), else the built-in one.
        """
        if loader is not None:
            return loader(files.find_file(self.path / tree.FILES, name))
        return files.load_object(SaverRegistry(), self.path / tree.FILES, name)

    def load_scalar(self, name: str) -> Any:
        """A metric's points: a numpy array with fields step, value, time.

        Raises:
            NotFound: no such metric in this run; the message lists those that exist.
        """
        return load_metric(self.path / tree.METRICS, name)

    @property
    def runs(self) -> list[StoredRun]:
        """The nested runs directly inside this one, sorted by name."""
        return _runs_in(self.path / tree.RUNS, self.experiment_dir)

    def walk(self) -> list[StoredRun]:
        """This run and every nested run below it, depth first."""
        found = [self]
        for run in self.runs:
            found.extend(run.walk())
        return found


class StoredExperiment:
    """An experiment directory: every run of that name, by hand or queued."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path).resolve()
        self.name = self.path.name

    def __repr__(self) -> str:
        return f"StoredExperiment({self.name!r}, runs={len(self.runs)})"

    @property
    def runs(self) -> list[StoredRun]:
        """Top-level runs (one per process or job), sorted by name."""
        return _runs_in(self.path, self.path)

    def all_runs(self, names: Sequence[str] | None = None) -> list[StoredRun]:
        """Every run, nested ones included; ``names`` keeps those named so (or nested below them)."""
        found = [run for top in self.runs for run in top.walk()]
        if names is None:
            return found
        return [r for r in found if any(r.name == n or r.name.startswith(n + "/") for n in names)]

    def table(self, maximize: Sequence[str] = (), runs: Sequence[str] | None = None) -> Any:
        """The runs table: one row per run with state, config values, last and best of each metric."""
        from expq.experiment.table import runs_table

        return runs_table(self.all_runs(runs), maximize)

    def plot(self, metrics: str | Sequence[str], output: str | os.PathLike[str],
             runs: Sequence[str] | None = None) -> Path:
        """Draw ``metrics`` of the runs, one axis per metric, into ``output`` (format from its extension)."""
        from expq.experiment.plot import plot_runs

        names = [metrics] if isinstance(metrics, str) else list(metrics)
        return plot_runs(self.all_runs(runs), names, Path(output), title=self.name)


def _runs_in(folder: Path, experiment_dir: Path) -> list[StoredRun]:
    if not folder.is_dir():
        return []
    return [
        StoredRun(entry, experiment_dir)
        for entry in sorted(folder.iterdir())
        if entry.is_dir() and not entry.name.startswith(".") and tree.is_run_dir(entry)
    ]


def _alive(pid: Any) -> bool:
    return isinstance(pid, int) and pid > 0 and pid_exists(pid)


def open_path(path: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> StoredRun | StoredExperiment:
    """The run or experiment stored at ``path``; a bare experiment name is looked up under the root.

    Raises:
        NotFound: nothing there.
        InputError: a directory that holds neither a run nor an experiment.
    """
    candidate = Path(path)
    if not candidate.exists():
        named = resolve_root(root)
        by_name = named / tree.EXPERIMENTS / str(path)
        if os.sep in str(path) or not by_name.exists():
            raise NotFound("experiment or run", path)
        candidate = by_name
    if not candidate.is_dir():
        raise InputError(f"{candidate} is not a directory of runs")
    if tree.is_run_dir(candidate):
        return StoredRun(candidate)
    if candidate.parent.name == tree.EXPERIMENTS or any(
        entry.is_dir() and tree.is_run_dir(entry) for entry in candidate.iterdir()
    ):
        return StoredExperiment(candidate)
    raise InputError(f"{candidate} holds neither a run nor an experiment")


def load_metric(directory: Path, name: str) -> Any:
    """``read_scalar``, with a "no such metric" error that lists the metrics logged there.

    Raises:
        NotFound: no metric ``name`` in ``directory``.
    """
    try:
        return read_scalar(directory, name)
    except NotFound:
        existing = list_metrics(directory)
        known = f"logged: {', '.join(existing)}" if existing else "no metric logged yet"
        raise NotFound("metric", f"{name} in {directory.parent} ({known})") from None
