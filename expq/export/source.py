"""What the exporters read: the runs a user names, and each run's times and labels from its files.

Both exporters take the same arguments (experiment names, experiment paths, run paths) and
need the same facts about a run whoever wrote it: the experiment API (``run.json``), the worker
(``job.json``, ``result.json``), or both.
"""
from __future__ import annotations

import datetime
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from expq._fs import read_json_object
from expq.errors import InputError, NotFound
from expq.experiment import tree
from expq.experiment.reading import StoredExperiment, StoredRun, open_path

__all__ = ["select_runs", "RunFacts", "run_facts", "FINAL_STATES", "FAILED_STATES"]

FINAL_STATES = frozenset({"done", "failed", "cancelled", "crashed"})
FAILED_STATES = frozenset({"failed", "cancelled", "crashed"})


def select_runs(targets: Sequence[str | os.PathLike[str]], root: Path | None) -> list[StoredRun]:
    """Every run named by ``targets``: an experiment (name or path) gives all its runs, nested ones
    included; a run directory gives that run and its nested runs. Each run once, in order.

    Raises:
        NotFound: a target that names nothing, or an experiment without runs.
        InputError: a directory that holds neither a run nor an experiment.
    """
    if not targets:
        raise InputError("name at least one experiment or run")
    runs: dict[Path, StoredRun] = {}
    for target in targets:
        stored = open_path(target, root=root)
        found = stored.all_runs() if isinstance(stored, StoredExperiment) else stored.walk()
        if not found:
            raise NotFound("run in experiment", target)
        for run in found:
            runs.setdefault(run.path, run)
    return list(runs.values())


@dataclass(frozen=True)
class RunFacts:
    """A run's outcome and labels as both exporters present them."""

    state: str
    started: float | None  # seconds since the epoch
    ended: float | None
    job_id: int | None
    host: str | None
    git_commit: str | None
    tags: tuple[str, ...]


def check_output_folder(path: Path, what: str) -> None:
    """An export's output folder must be a folder (or not exist yet) that this user can write in,
    checked before anything is written.

    Raises:
        InputError: naming ``what`` and the problem.
    """
    if path.exists() and not path.is_dir():
        raise InputError(f"{what}: {path} is a file, not a folder")
    existing = path
    while not existing.exists():
        existing = existing.parent
    if not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"{what}: {existing} is not writable")


def run_facts(run: StoredRun) -> RunFacts:
    """The facts of ``run``: the worker's result first (it outlives the process), then run.json."""
    meta = run.meta
    result = run.job_result or {}
    job = read_json_object(run.path / tree.JOB_JSON) or {}
    git = meta.get("git")
    git = git if isinstance(git, dict) else {}
    job_id = result.get("job_id", job.get("id", meta.get("job_id")))
    return RunFacts(
        state=run.state,
        started=_epoch(result.get("started_at")) or _epoch(meta.get("started_at")),
        ended=_epoch(result.get("finished_at")) or _epoch(meta.get("finished_at")),
        job_id=job_id if isinstance(job_id, int) and not isinstance(job_id, bool) else None,
        host=_text(result.get("host")) or _text(meta.get("host")),
        git_commit=_text(git.get("commit")),
        tags=_tags(job.get("tags"), meta.get("tags"),
                   (read_json_object(run.path / tree.LABELS_JSON) or {}).get("tags")),  # expq tag / submit --tag
    )


def _epoch(value: Any) -> float | None:
    """Seconds since the epoch from a number or an ISO 8601 string; None for anything else."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            moment = datetime.datetime.fromisoformat(value)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=datetime.timezone.utc)
        return moment.timestamp()
    return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _tags(*sources: Any) -> tuple[str, ...]:
    # Lists under "tags" in job.json or run.json; tags kept beside the spec by `expq tag` (issue 14)
    # are to be read here too once that file exists.
    found: dict[str, None] = {}
    for source in sources:
        if isinstance(source, (list, tuple)):
            found.update((str(tag), None) for tag in source)
    return tuple(found)
