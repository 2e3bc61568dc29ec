"""Selecting jobs by what is inside their specs (an experiment), for ``--after-experiment``,
``wait --experiment`` and ``rm --experiment``.

The experiment is not in the queue's file names, so this reads every spec of the states asked for,
once, taking only the ``experiment`` field (no full validation: a malformed spec is the worker's
business and is simply not selected). The states are listed in the order jobs move through them (so
a job moving meanwhile is seen), then the specs are read in blocks that forked helper processes
share (``expq.fan_out``): 100,000 specs are 100,000 small reads and parses.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable

from expq.errors import InputError
from expq.fan_out import ordered_blocks
from expq.queue.paths import job_id_of
from expq.queue.states import State
from expq.queue.store import JobQueue, read_queue_file

__all__ = ["jobs_of_experiment", "state_in"]

_BLOCK = 1000  # specs read per block


def jobs_of_experiment(queue: JobQueue, experiment: str, states: Iterable[State] = tuple(State),
                       helpers: int = 0) -> dict[int, State]:
    """Every job of ``experiment`` in ``states``, by id (in id order). ``helpers`` forked processes
    share the reading (``fan_out``: only from a process without other threads)."""
    files = [(state, path) for state in states for path in _spec_files(queue, state)]

    def marks(block: list[tuple[State, str]]) -> bytes:  # 1 + the index of the state it is in now, or 0
        return bytes(0 if (now := state_in(queue, experiment, state, path)) is None else 1 + _STATES.index(now)
                     for state, path in block)

    found = b"".join(ordered_blocks(files, marks, _BLOCK, helpers))
    return dict(sorted((job_id_of(os.path.basename(path)), _STATES[mark - 1])
                       for (_, path), mark in zip(files, found) if mark))


_STATES = tuple(State)
_MOVES = 5  # a job that keeps moving while it is read is looked for this often


def _spec_files(queue: JobQueue, state: State) -> list[str]:
    """The paths of a state's spec files, as listed (in no order)."""
    if state is State.PENDING:
        folders = [folder for folder, _ in queue.pending_folders()]
    else:
        folders = [os.fspath(queue.paths.state_dir(state))]
    paths = []
    for folder in folders:
        try:
            paths += [f"{folder}/{name}" for name in os.listdir(folder) if name.endswith(".json")]
        except (FileNotFoundError, NotADirectoryError):  # gone since, or a file: nothing listed
            continue
    return paths


def state_in(queue: JobQueue, experiment: str, state: State, path: str) -> State | None:
    """The state a listed job (its spec file at ``path`` in ``state``) is in now when the spec names
    ``experiment``, else None. A job that moved on since the listing is read where it is now."""
    try:
        job = job_id_of(os.path.basename(path))
    except ValueError:  # not a job's file
        return None
    for _ in range(_MOVES):
        try:
            return state if _experiment_of(path) == experiment else None
        except FileNotFoundError:
            found = queue.locate(job)
            if found is None:  # removed meanwhile
                return None
            state, path = found[0], os.fspath(found[1])
    return None


def _experiment_of(path: str) -> str | None:
    """The experiment a spec file names; None when it is not a spec.

    Raises:
        FileNotFoundError: the file is gone (its job moved on).
    """
    try:
        data = json.loads(read_queue_file(path)[0])
    except FileNotFoundError:
        raise
    except (OSError, ValueError, RecursionError, InputError):  # not a small regular file, not JSON
        return None
    experiment = data.get("experiment") if isinstance(data, dict) else None
    return experiment if isinstance(experiment, str) else None
