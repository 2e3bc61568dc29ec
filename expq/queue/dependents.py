"""Jobs submitted with ``--after`` wait in ``pending/after/``, where no worker looks, until their
dependencies end. ``dependents/<dep>/<id>`` (an empty file) tells whoever ends job ``dep`` which jobs
to look at: a job whose dependencies are all done is promoted into its bucket (one rename: exactly
one promoter wins), one whose dependency failed or was cancelled is cancelled with the reason (and
its own dependents after it). A promoter killed halfway leaves the index entries behind, and the
periodic pass of each host's reaper (``promote_all``) finishes the work.
"""
from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from expq._fs import ensure_dir, write_file
from expq.errors import InputError
from expq.queue.paths import AFTER, QueuePaths
from expq.queue.result import Result
from expq.queue.spec import JobSpec
from expq.queue.states import FINISHED, State
from expq.queue.store import JobQueue, read_spec

__all__ = ["unfinished", "index_dependents", "promote_dependents", "promote_all", "cancel_for_dependency"]


def unfinished(paths: QueuePaths, specs: Iterable[JobSpec]) -> set[int]:
    """The ids of the jobs with a dependency that is not done yet (a stat per distinct dependency)."""
    done: dict[int, bool] = {}
    waiting = set()
    for spec in specs:
        for dep in spec.after:
            if dep not in done:
                done[dep] = paths.job_file(State.DONE, dep).exists()
            if not done[dep]:
                waiting.add(spec.id)
                break
    return waiting


def index_dependents(paths: QueuePaths, specs: Iterable[JobSpec]) -> None:
    """Write ``dependents/<dep>/<id>`` for each dependency of each spec, before the spec is visible."""
    made: set[int] = set()
    for spec in specs:
        for dep in spec.after:
            if dep not in made:
                ensure_dir(paths.dependents_of(dep))
                made.add(dep)
            write_file(paths.dependents_of(dep) / f"{spec.id:08d}", b"")


def promote_dependents(queue: JobQueue, dep: int, highest_id: int | None = None) -> None:
    """Job ``dep`` ended (or was never handed out: above ``highest_id``): settle each job that waits
    for it, then drop its index entries. Cancelled dependents are settled the same way in turn (a
    worklist, not recursion: chains may be long)."""
    work = [dep]
    while work:
        ended = work.pop()
        if not _has_ended(queue, ended) and (highest_id is None or ended <= highest_id):
            continue  # still to run: its entries stay until it ends
        folder = queue.paths.dependents_of(ended)
        try:
            names = os.listdir(folder)
        except (FileNotFoundError, NotADirectoryError):
            continue
        for name in names:
            if name.isascii() and name.isdigit() and _settle(queue, int(name), highest_id):
                work.append(int(name))
            with contextlib.suppress(OSError):  # gone already, or not an entry we made (a folder): left
                os.unlink(folder / name)
        with contextlib.suppress(OSError):
            os.rmdir(folder)


def promote_all(queue: JobQueue, highest_id: Callable[[], int | None]) -> None:
    """The periodic pass: settle the dependents of every dependency that has ended or was never
    handed out (a few stats per dependency in the index, never a look at the waiting jobs)."""
    try:
        names = os.listdir(queue.paths.dependents)
    except FileNotFoundError:
        return
    highest: int | None = None
    for name in names:
        if not (name.isascii() and name.isdigit()):
            continue
        dep = int(name)
        if _has_ended(queue, dep):
            promote_dependents(queue, dep)
            continue
        highest = highest_id() if highest is None else highest
        if highest is not None and dep > highest:
            promote_dependents(queue, dep, highest)


def _has_ended(queue: JobQueue, job_id: int) -> bool:
    return any(queue.paths.job_file(state, job_id).exists() for state in FINISHED)


def _waiting_file(queue: JobQueue, job_id: int) -> str | None:
    after = queue.paths.state_dir(State.PENDING) / AFTER
    try:
        priorities = os.listdir(after)
    except FileNotFoundError:
        return None
    return next((path for p in priorities if os.path.exists(path := f"{after}/{p}/{job_id:08d}.json")), None)


def _settle(queue: JobQueue, job_id: int, highest_id: int | None) -> bool:
    """Promote or cancel one waiting job if its dependencies allow; True when it was cancelled."""
    from expq.queue.claim import dependency_block

    path = _waiting_file(queue, job_id)
    if path is None:  # promoted, cancelled or removed already
        return False
    try:
        spec = read_spec(Path(path))
    except (FileNotFoundError, InputError):
        return False
    block = dependency_block(queue, spec, highest_id)
    if block is None:
        queue.place_pending(path, spec, waiting=False)
        return False
    if block[0] == "wait":
        return False  # its other dependency's entry brings it back
    return cancel_for_dependency(queue, spec, block, cascade=False)


def cancel_for_dependency(queue: JobQueue, spec: JobSpec, block: tuple[str, int], cascade: bool = True) -> bool:
    """Cancel a pending job whose dependency can never succeed (``dependency_block``'s verdict), with
    the reason; False when it moved on meanwhile. ``cascade=False``: the caller settles its dependents."""
    if not queue.move(spec, State.PENDING, State.CANCELLED, cascade=cascade):
        return False
    what = "does not exist" if block[0] == "unknown" else str(queue.state_of(block[1]))
    queue.write_outcome(spec, Result.without_run(spec.id, State.CANCELLED, f"dependency {block[1]} {what}", 0,
                                                 time.time()))
    return True
