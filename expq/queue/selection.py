"""Selecting jobs by what is inside their specs (an experiment), for ``--after-experiment``,
``wait --experiment`` and ``rm --experiment``.

The experiment is not in the queue's file names, so this reads every spec of the states asked
for, once, in the order jobs move through them (so a job moving meanwhile is seen), taking only the ``experiment`` field (no full validation: a malformed spec is the
worker's business and is simply not selected).
"""
from __future__ import annotations

import json
from collections.abc import Iterable

from expq.errors import InputError
from expq.queue.paths import job_id_of
from expq.queue.states import State
from expq.queue.store import JobQueue, read_queue_file

__all__ = ["jobs_of_experiment"]


def jobs_of_experiment(queue: JobQueue, experiment: str,
                       states: Iterable[State] = tuple(State)) -> dict[int, State]:
    """Every job of ``experiment`` in ``states``, by id (in id order)."""
    found: dict[int, State] = {}
    for state in states:
        directory = queue.paths.state_dir(state)
        for name in queue.list_names(state):
            try:
                job = job_id_of(name)
                raw, _ = read_queue_file(directory / name)
                data = json.loads(raw)
            except (OSError, ValueError, RecursionError, InputError):  # moved on, or not a spec: not selected
                continue
            if isinstance(data, dict) and data.get("experiment") == experiment:
                found[job] = state
    return dict(sorted(found.items()))
