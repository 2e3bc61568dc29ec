"""``expq export mlflow``: one MLflow run per expq run, updated in place on every re-export.

An expq run becomes an MLflow run of the MLflow experiment with the same name, tagged
``expq.run_id`` = ``<experiment>/<run>``; a re-export finds it by that tag and only adds what is
missing: metric points beyond the number already stored (tag ``expq.points.<metric>``, sent in
the same call as the points it counts; without it, the length of the metric's history),
params not yet set (MLflow never changes a param), files not yet uploaded or changed in size.
Params are the flattened config, metrics keep their steps and millisecond timestamps, tags say
job id, state, host, git commit and expq tags; start, end and status follow the run.
MLflow refuses NaN and inf on some backends, so such points are skipped and counted.
"""
from __future__ import annotations

import math
import os
import re
import urllib.error
import urllib.request
from collections.abc import Iterator, MutableMapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from expq.errors import ExpqError
from expq.experiment import tree
from expq.experiment.config import flatten
from expq.experiment.reading import StoredRun
from expq.export.source import FINAL_STATES, check_output_folder, run_facts

__all__ = ["export_mlflow", "MlflowExport", "prepare_tracking_uri", "RUN_ID_TAG"]

RUN_ID_TAG = "expq.run_id"
COUNT_TAG = "expq.points."  # + metric: how many of its points were exported (saves reading the history)
FILE_STORE_VAR = "MLFLOW_ALLOW_FILE_STORE"
_STATUS = {"done": "FINISHED", "failed": "FAILED", "crashed": "FAILED", "cancelled": "KILLED"}
_BATCH = 999  # MLflow's limit is 1000 metrics and tags per log_batch call; one is the count tag
_MAX_PARAM = 6000  # MLflow's limit on a param value's length
_UNSAFE_KEY = re.compile(r"[^\w\-. /]")  # MLflow keys: alphanumerics, _ - . space /


@dataclass
class MlflowExport:
    """What ``export_mlflow`` did, for the CLI to say."""

    tracking_uri: str
    experiment: str = ""
    created: int = 0
    updated: int = 0
    points: int = 0
    nonfinite: int = 0
    artifacts: int = 0
    param_conflicts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def prepare_tracking_uri(uri: str, environ: MutableMapping[str, str] | None = None) -> tuple[str, list[str]]:
    """The URI MLflow should get, and notes on what was set for it.

    ``file:DIR`` (or a bare path) becomes an absolute ``file://`` URI, and since MLflow 3 refuses
    plain file stores unless told, ``MLFLOW_ALLOW_FILE_STORE=true`` is set in this process. A
    server URI is probed first, so an unreachable one fails before anything is written.

    Raises:
        InputError: a file store path that is a file or not writable.
        ExpqError: a tracking server that does not answer.
    """
    env = os.environ if environ is None else environ
    notes: list[str] = []
    if uri.startswith(("http://", "https://")):
        _probe(uri)
        return uri, notes
    if ":" in uri.split("/", 1)[0] and not uri.startswith("file:"):
        return uri, notes  # another scheme (sqlite:, databricks, ...): MLflow's business
    raw = uri[len("file:"):] if uri.startswith("file:") else uri
    if raw.startswith("//"):
        raw = raw[2:]
    path = Path(raw).expanduser().absolute()
    check_output_folder(path, f"tracking URI {uri}")
    if env.get(FILE_STORE_VAR, "").lower() != "true":
        env[FILE_STORE_VAR] = "true"
        notes.append(f"set {FILE_STORE_VAR}=true: MLflow 3 refuses file stores unless told")
    return path.as_uri(), notes


def _probe(uri: str) -> None:
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=10) as response:
            response.read(64)
    except urllib.error.HTTPError:
        return  # it answered: a server that has no /health is still a server
    except (urllib.error.URLError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise ExpqError(f"cannot reach the MLflow tracking server {uri}: {reason}") from None


def export_mlflow(runs: Sequence[StoredRun], tracking_uri: str) -> MlflowExport:
    """Create or update one MLflow run per expq run (parents before nested runs).

    Raises:
        InputError / ExpqError: see ``prepare_tracking_uri``; ExpqError when MLflow is not
            installed or refuses a request.
    """
    try:
        from mlflow.exceptions import MlflowException
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise ExpqError("MLflow is not installed: pip install 'expq[mlflow]'") from None
    uri, notes = prepare_tracking_uri(tracking_uri)
    report = MlflowExport(uri, notes=notes)
    try:
        client = MlflowClient(tracking_uri=uri)
        known: dict[str, dict[str, Any]] = {}
        mlflow_ids: dict[Path, str] = {}
        for run in runs:
            experiment = run.experiment_dir.name
            if experiment not in known:
                known[experiment] = _experiment(client, experiment)
            report.experiment = experiment
            parent = mlflow_ids.get(run.path.parent.parent) if run.path.parent.name == tree.RUNS else None
            mlflow_ids[run.path] = _export_run(client, run, known[experiment], parent, report)
    except MlflowException as error:
        raise ExpqError(f"MLflow refused the export to {uri}: {_one_line(error)}") from None
    return report


def _one_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def _experiment(client: Any, name: str) -> dict[str, Any]:
    """The MLflow experiment ``name`` (created if missing) and its runs by ``expq.run_id``."""
    from mlflow.entities import ViewType

    found = client.get_experiment_by_name(name)
    if found is None:
        experiment_id = client.create_experiment(name)
    else:
        experiment_id = found.experiment_id
        if found.lifecycle_stage == "deleted":
            client.restore_experiment(experiment_id)
    existing = {}
    for mlflow_run in _all_runs(client, experiment_id, ViewType.ALL):
        tag = mlflow_run.data.tags.get(RUN_ID_TAG)
        if tag:
            existing[tag] = mlflow_run
    return {"id": experiment_id, "runs": existing}


def _all_runs(client: Any, experiment_id: str, view: Any) -> Iterator[Any]:
    token = None
    while True:
        page = client.search_runs([experiment_id], run_view_type=view, max_results=1000, page_token=token)
        yield from page
        token = page.token
        if not token:
            return


def _export_run(client: Any, run: StoredRun, experiment: dict[str, Any], parent: str | None,
                report: MlflowExport) -> str:
    from mlflow.entities import Metric, Param, RunTag

    facts = run_facts(run)
    key = f"{run.experiment_dir.name}/{run.name}"
    tags = {RUN_ID_TAG: key, "expq.experiment": run.experiment_dir.name, "expq.run": run.name,
            "expq.path": str(run.path), "expq.state": facts.state}
    if facts.job_id is not None:
        tags["expq.job_id"] = str(facts.job_id)
    if facts.host:
        tags["expq.host"] = facts.host
    if facts.git_commit:
        tags["mlflow.source.git.commit"] = facts.git_commit
    if facts.tags:
        tags["expq.tags"] = ",".join(facts.tags)
    if parent:
        tags["mlflow.parentRunId"] = parent

    existing = experiment["runs"].get(key)
    if existing is None:
        created = client.create_run(experiment["id"], start_time=_ms(facts.started), tags=tags, run_name=run.name)
        run_id, params = created.info.run_id, {}
        experiment["runs"][key] = created
        report.created += 1
    else:
        run_id, params = existing.info.run_id, dict(existing.data.params)
        if existing.info.lifecycle_stage == "deleted":
            client.restore_run(run_id)
        report.updated += 1

    new_params = []
    for name, value in flatten(run.config).items():
        param_key, text = _key(name), str(value)[:_MAX_PARAM]
        if param_key not in params:
            new_params.append(Param(param_key, text))
        elif params[param_key] != text:
            report.param_conflicts.append(f"{key}: {param_key}")
    client.log_batch(run_id, tags=[RunTag(k, v) for k, v in tags.items()])  # tags may change: state
    for start in range(0, len(new_params), 100):  # MLflow's limit of params per call
        client.log_batch(run_id, params=new_params[start:start + 100])
    stored_tags = existing.data.tags if existing is not None else {}
    for name in run.metrics:
        metric_key = _key(name)
        points = run.load_scalar(name)
        finite = [(int(s), float(v), float(t)) for s, v, t in points.tolist() if math.isfinite(v)]
        report.nonfinite += len(points) - len(finite)
        done = _points_stored(client, run_id, metric_key, stored_tags) if existing is not None else 0
        new = [Metric(metric_key, value, int(round(moment * 1000)), step) for step, value, moment in finite[done:]]
        for start in range(0, len(new), _BATCH):
            # The count travels in the same call as the points it counts (one transaction on a server).
            count = RunTag(f"{COUNT_TAG}{metric_key}", str(done + start + len(new[start:start + _BATCH])))
            client.log_batch(run_id, metrics=new[start:start + _BATCH], tags=[count])
        report.points += len(new)

    report.artifacts += _upload_files(client, run, run_id)
    status = _STATUS.get(facts.state)
    if facts.state in FINAL_STATES and status:
        client.set_terminated(run_id, status, end_time=_ms(facts.ended))
    return str(run_id)


def _points_stored(client: Any, run_id: str, key: str, tags: dict[str, str]) -> int:
    """How many points of ``key`` the MLflow run holds: the count tag, else its metric history."""
    text = tags.get(f"{COUNT_TAG}{key}", "")
    if text.isdigit():
        return int(text)
    return len(client.get_metric_history(run_id, key))


def _upload_files(client: Any, run: StoredRun, run_id: str) -> int:
    """Upload the run's ``files/`` that MLflow lacks or holds with another size; return how many."""
    folder = run.path / tree.FILES
    if not folder.is_dir():
        return 0
    stored = {info.path: info.file_size for info in _artifacts(client, run_id, None)}
    uploaded = 0
    for path in sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".")):
        rel = path.relative_to(folder).as_posix()
        if stored.get(rel) == path.stat().st_size:
            continue
        subdir = str(Path(rel).parent) if "/" in rel else None
        client.log_artifact(run_id, str(path), artifact_path=subdir)
        uploaded += 1
    return uploaded


def _artifacts(client: Any, run_id: str, path: str | None) -> Iterator[Any]:
    for info in client.list_artifacts(run_id, path):
        if info.is_dir:
            yield from _artifacts(client, run_id, info.path)
        else:
            yield info


def _key(name: str) -> str:
    return _UNSAFE_KEY.sub("_", name)


def _ms(epoch: float | None) -> int | None:
    return None if epoch is None else int(round(epoch * 1000))
