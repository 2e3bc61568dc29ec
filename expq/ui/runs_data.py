"""What the experiment and run views show, as JSON-ready dicts, read from the experiment tree.

The runs table is the one ``expq runs`` prints (``expq.experiment.table``), with metric summaries
from the dashboard's ``MetricStore``: a poll reads only what each metric file grew. On a cold
start with thousands of large metric files, the summaries are computed within a time budget; the
rest of the rows carry their last value (read from the file's tail) and no best yet, the answer
says ``partial``, and the page asks again.
"""
from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any

from expq._fs import read_json_object
from expq.errors import InputError, NotFound
from expq.experiment import tree
from expq.experiment.metrics import metric_path
from expq.experiment.reading import StoredRun
from expq.experiment.table import build_table, natural_key, run_row
from expq.queue.attempts import read_attempts
from expq.queue.paths import RunPaths
from expq.ui.paths import experiment_dir, run_dir
from expq.ui.series import MetricStore, finite_or_none, last_point

__all__ = ["SafeRun", "runs_table", "run_details", "series", "clean", "MAX_POINTS", "SUMMARY_BUDGET"]

MAX_POINTS = 1000  # points per line sent to the browser; a chart is a few hundred pixels wide
SUMMARY_BUDGET = 0.15  # seconds one runs-table request spends reading metric files it has not seen (then: a background thread)
LOGS = (tree.STDOUT_LOG, tree.STDERR_LOG, tree.RUN_LOG)


class SafeRun(StoredRun):
    """A StoredRun whose config reads as {} when config.yaml is torn or not YAML."""

    @classmethod
    def at(cls, path: Path, experiment_dir: Path, name: str) -> SafeRun:
        """A run whose directory, experiment and name the caller already knows, made without
        StoredRun's ``resolve()`` (a third of a 1,000-run table's time went to resolving paths)."""
        run = cls.__new__(cls)
        run.path, run.experiment_dir, run.name = path, experiment_dir, name
        return run

    @property
    def config(self) -> dict[str, Any]:
        import yaml

        try:
            return super().config
        except (yaml.YAMLError, OSError, UnicodeDecodeError, TypeError, ValueError):
            return {}

    @property
    def metrics(self) -> list[str]:
        """Metric names, with one scandir per folder (a runs table of 1,000 runs lists 1,000 folders)."""
        return sorted(_metric_names(self.path / tree.METRICS, ""))


def _metric_names(folder: Path, prefix: str) -> list[str]:
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    names = []
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if entry.name.endswith(".csv") and entry.is_file():
            names.append(prefix + entry.name[:-4])
        elif entry.is_dir():
            names.extend(_metric_names(Path(entry.path), f"{prefix}{entry.name}/"))
    return names


def _runs(path: Path) -> list[SafeRun]:
    """Top-level runs of an experiment directory, in natural order."""
    found = []
    try:
        entries = list(os.scandir(path))
    except OSError:
        return []
    for entry in entries:
        if entry.is_dir() and not entry.name.startswith(".") and tree.is_run_dir(Path(entry.path)):
            found.append(SafeRun.at(Path(entry.path), path, entry.name))
    return sorted(found, key=lambda r: natural_key(r.name))


def _walk(run: SafeRun) -> list[SafeRun]:
    out = [run]
    for nested in _runs_below(run):
        out.extend(_walk(nested))
    return out


def _runs_below(run: StoredRun) -> list[SafeRun]:
    folder = run.path / tree.RUNS
    if not folder.is_dir():
        return []
    found = [SafeRun.at(p, run.experiment_dir, f"{run.name}/{p.name}") for p in folder.iterdir()
             if p.is_dir() and not p.name.startswith(".") and tree.is_run_dir(p)]
    return sorted(found, key=lambda r: natural_key(r.name))


def runs_table(root: Path, experiment: str, store: MetricStore, maximize: tuple[str, ...] = (),
               budget: float = SUMMARY_BUDGET) -> dict[str, Any]:
    """The runs table of one experiment (nested runs included) and the metrics its runs logged.

    Raises:
        NotFound: no such experiment.
    """
    path = experiment_dir(root, experiment)
    runs = [run for top in _runs(path) for run in _walk(top)]
    deadline = time.monotonic() + budget
    later: list[str] = []

    def metric(run: StoredRun, name: str) -> tuple[float | None, float | None]:
        file = f"{run.path}/{tree.METRICS}/{name}.csv"  # name: from the run's own listing, so safe
        now = time.monotonic()
        if store.known(file) or now < deadline:
            summary = store.summary(file)
            return summary.last, summary.best(name in maximize)
        later.append(file)
        if now > deadline + budget:  # a second budget for last values alone; then the next poll
            return None, None
        point = last_point(file)
        return (point[1] if point else None), None

    table = build_table(run_row(run, metric) for run in runs)
    partial = bool(later)
    if later:
        store.warm(later)
    metrics = sorted({c.rsplit(".", 1)[0] for c in table.columns if c.endswith(".last")}, key=natural_key)
    return clean({
        "experiment": experiment, "columns": table.columns, "shown": table.shown_columns,
        "constant": table.constant, "rows": table.rows, "metrics": metrics, "partial": partial,
        "config_keys": [c for c in table.shown_columns if c.startswith("config.")],
    })


def run_details(root: Path, experiment: str, name: str) -> dict[str, Any]:
    """Everything the run view shows: config, outcome, returned value, attempts, files, metrics, logs.

    Raises:
        NotFound: no such experiment or run.
    """
    path = run_dir(root, experiment, name)
    run = SafeRun.at(path, experiment_dir(root, experiment), name)
    meta = run.meta
    result_file = meta.get("result_file")
    attempts = [a.to_dict() for a in read_attempts(RunPaths(path))]
    metrics = {}
    for metric in run.metrics:
        point = last_point(metric_path(path / tree.METRICS, metric))
        metrics[metric] = {"last": point[1] if point else None, "step": point[0] if point else None}
    return clean({
        "experiment": experiment, "name": run.name, "state": run.state, "config": run.config,
        "result": run.job_result, "returned": meta.get("result"),
        "returned_file": f"{tree.FILES}/{result_file}" if isinstance(result_file, str) else None,
        "meta": meta, "job": read_json_object(path / tree.JOB_JSON), "attempts": attempts,
        "files": [f"{tree.FILES}/{f}" for f in run.files], "metrics": metrics,
        "runs": [r.name for r in _runs_below(run)],
        "logs": [log for log in LOGS if (path / log).is_file()],
    })


def series(root: Path, experiment: str, metric: str, runs: list[str], store: MetricStore,
           x: str = "step", max_points: int = MAX_POINTS) -> dict[str, Any]:
    """The points of ``metric`` for each named run, thinned to ``max_points`` (the last point always kept).

    ``x`` is ``step`` or ``time`` (seconds since the run's first point). A run without the metric, or
    that does not exist, is left out; so is a name that would leave the experiment.
    """
    import numpy as np

    experiment_dir(root, experiment)
    lines = []
    for name in runs:
        try:
            path = run_dir(root, experiment, name)
            file = metric_path(path / tree.METRICS, metric)
        except (NotFound, InputError):  # a run that is not there, or an unsafe metric name: nothing to draw
            continue
        if not file.is_file():
            continue
        points = store.points(file)
        total = len(points)
        if total > max_points:
            keep = np.unique(np.append(np.arange(0, total, math.ceil(total / max_points)), total - 1))
            points = points[keep]
        if x == "step":
            xs: list[Any] = points[:, 0].astype(np.int64).tolist()
        else:
            xs = _floats(np.round(points[:, 2] - (points[0, 2] if len(points) else 0), 3))
        lines.append({"run": name, "x": xs, "y": _floats(points[:, 1]), "points": total})
    return {"experiment": experiment, "metric": metric, "x": x, "lines": lines}


def _floats(values: Any) -> list[float | None]:
    """A float array as a JSON-ready list: NaN and infinity become null (the chart leaves a gap)."""
    import numpy as np

    if np.isfinite(values).all():
        return list(values.tolist())
    return [finite_or_none(v) for v in values.tolist()]


def clean(value: Any) -> Any:
    """JSON-safe: NaN and infinity become null, tuples lists, anything else unknown its text."""
    if isinstance(value, float):
        return finite_or_none(value)
    if isinstance(value, dict):
        return {str(k): clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean(v) for v in value]
    if value is None or isinstance(value, (str, int, bool)):
        return value
    return str(value)
