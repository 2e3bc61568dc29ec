"""Removing jobs (``expq rm``) and run directories that no job owns (``expq gc``).

A removal is crash-safe because its commit point is one rename, as for every state change: the
job's queue file moves from its state folder into ``queue/removed/``, and from that moment no
command sees the job. Only then does its run directory move into ``removed/`` too and get deleted,
and the queue file goes last. A removal interrupted anywhere (SIGKILL, power loss) leaves the job
either fully in the queue or in ``removed/``, where the next ``rm`` or ``gc`` finishes it.

Running jobs are refused (cancel them first), and so are jobs that a pending job still waits on
(``--after``): removing them would leave that job waiting forever. A pending, failed or cancelled job
that a worker claims or ``retry`` re-queues between the check and the rename is simply not removed:
the rename finds nothing.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from expq._fs import ensure_dir
from expq.errors import InputError, NotFound
from expq.queue.control import clear_cancel_request
from expq.queue.paths import job_id_of, listed_id
from expq.queue.selection import jobs_of_experiment
from expq.queue.spec import JobSpec
from expq.queue.states import FINISHED, State
from expq.queue.store import JobQueue, read_spec

__all__ = ["Victim", "select", "remove", "finish_removals", "orphan_run_dirs", "remove_orphans", "trash_dir",
           "stale_worker_files", "GC_GRACE", "WORKER_LOG_KEEP"]

GC_GRACE = 600.0  # a run directory changed this recently may belong to a submit in progress: gc leaves it
WORKER_LOG_KEEP = 7 * 86400.0  # gc keeps the logs of gone workers this long
_KEEP = ".keep"


@dataclass(frozen=True)
class Victim:
    """A job chosen for removal, where it was when chosen."""

    state: State
    spec: JobSpec
    path: Path  # its queue file


def trash_dir(queue: JobQueue) -> Path:
    return queue.paths.removed


def select(queue: JobQueue, ids: Sequence[int] = (), states: Sequence[State] = (), experiment: str | None = None,
           older_than: float | None = None, now: float | None = None, helpers: int = 0) -> list[Victim]:
    """The jobs to remove: the ``ids`` given, or every job matching the filters (default: finished).
    With ``experiment``, its jobs are picked first (``jobs_of_experiment``, with ``helpers`` forked
    processes) and only their specs are read whole.

    Raises:
        NotFound: an unknown id. InputError: a running job, or one a pending job waits on.
    """
    now = time.time() if now is None else now
    if ids:
        where = queue.locate_many(ids)
        for job in ids:
            if job not in where:
                raise NotFound("job", job)
        victims = [_victim(queue, *where[job]) for job in dict.fromkeys(ids)]
        chosen = [v for v in victims if v is not None]
    else:
        wanted = list(states) or sorted(FINISHED, key=list(State).index)
        if State.RUNNING in wanted:
            raise InputError("cannot remove running jobs: cancel them first (expq cancel)")
        mine = None if experiment is None else jobs_of_experiment(queue, experiment, wanted, helpers)
        chosen = []
        for state in wanted:
            for name in queue.list_names(state):
                if mine is not None and listed_id(name) not in mine:
                    continue
                victim = _victim(queue, state, queue.paths.state_dir(state) / name)
                if victim is None or (experiment is not None and victim.spec.experiment != experiment):
                    continue
                if older_than is not None and now - _age_stamp(victim) < older_than:
                    continue
                chosen.append(victim)
    for victim in chosen:
        if victim.state is State.RUNNING:
            raise InputError(f"cannot remove job {victim.spec.id}: it is running (cancel it first: expq cancel)")
    _check_dependents(queue, {v.spec.id for v in chosen})
    return chosen


def _victim(queue: JobQueue, state: State, path: Path) -> Victim | None:
    try:
        return Victim(state, read_spec(path), path)
    except FileNotFoundError:  # moved on since the listing: look it up where it is now
        try:
            state, spec = queue.get(job_id_of(path.name))
        except (InputError, ValueError):  # gone, or malformed where it went
            return None
        found = queue.locate(spec.id)
        return Victim(state, spec, found[1]) if found else None
    except InputError:  # malformed: the worker moves it aside; not ours to remove
        return None


def _age_stamp(victim: Victim) -> float:
    """When a job was submitted (pending) or ended: the rename into a finished state sets the ctime."""
    if victim.state not in FINISHED:
        return victim.spec.submitted_at
    try:
        return os.stat(victim.path).st_ctime
    except FileNotFoundError:
        return victim.spec.submitted_at


def _check_dependents(queue: JobQueue, removing: set[int]) -> None:
    """Refuse to remove a job that a pending job still waits for (found through the dependents index,
    never by reading the pending specs)."""
    for job in sorted(removing):
        try:
            names = sorted(os.listdir(queue.paths.dependents_of(job)))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for name in names:
            if not (name.isascii() and name.isdigit()) or int(name) in removing:
                continue
            if queue.state_of(int(name)) is State.PENDING:
                raise InputError(f"cannot remove job {job}: pending job {int(name)} waits for it "
                                 f"(remove or cancel job {int(name)} too)")


def remove(queue: JobQueue, victims: Iterable[Victim], keep_files: bool = False) -> tuple[list[int], list[int]]:
    """Take each job out of the queue (one rename), then delete its run directory unless
    ``keep_files``; returns (removed ids, ids that changed state meanwhile and were left alone)."""
    trash = ensure_dir(trash_dir(queue))
    finish_removals(queue)
    removed: list[int] = []
    left: list[int] = []
    for victim in victims:
        target = trash / f"{victim.spec.id:08d}{_KEEP if keep_files else ''}.json"
        try:
            os.rename(victim.path, target)
        except FileNotFoundError:  # claimed, retried or removed by someone else since it was chosen
            left.append(victim.spec.id)
            continue
        _finish(queue, target)
        removed.append(victim.spec.id)
    return removed, left


def _finish(queue: JobQueue, trash_file: Path) -> None:
    """Delete what is left of a job taken out of the queue: its run directory (unless kept), its
    cancel request, then the queue file itself, last."""
    keep = trash_file.name.endswith(f"{_KEEP}.json")
    try:
        spec = read_spec(trash_file)
    except (OSError, InputError):
        spec = None
    if spec is not None:
        clear_cancel_request(queue, spec.id)
        if not keep:
            run_dir = queue.paths.run(spec.run_dir).dir
            parked = trash_file.with_name(f"{spec.id:08d}.run")
            with contextlib.suppress(FileNotFoundError):
                os.rename(run_dir, parked)  # out of the tree first: no reader sees a half-deleted run
            _delete(parked)
    trash_file.unlink(missing_ok=True)


def finish_removals(queue: JobQueue) -> int:
    """Complete removals that a killed ``rm`` left in ``removed/``; returns how many."""
    trash = trash_dir(queue)
    try:
        entries = sorted(os.scandir(trash), key=lambda e: e.name)
    except FileNotFoundError:
        return 0
    count = 0
    for entry in entries:
        if entry.name.endswith(".json"):
            _finish(queue, Path(entry.path))
            count += 1
    for entry in entries:  # a run directory parked after its queue file was already gone
        if entry.name.endswith(".run") and not (trash / entry.name.replace(".run", ".json")).exists():
            _delete(Path(entry.path))
    return count


def _delete(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def orphan_run_dirs(queue: JobQueue, now: float | None = None) -> list[Path]:
    """Run directories of queued jobs (``<id>-<name>`` holding ``job.json`` or ``labels.json``) whose
    job is in no state of the queue. Runs started by hand (no ``job.json``) are never listed, nor
    is a directory changed in the last ``GC_GRACE`` seconds (a submit may be preparing it)."""
    now = time.time() if now is None else now
    owned: set[int] = set()
    for state in State:
        for name in queue.list_names(state):
            with contextlib.suppress(ValueError):
                owned.add(job_id_of(name))
    _owned_by_incoming(queue, owned)
    found = []
    try:
        experiments = sorted(e.path for e in os.scandir(queue.paths.experiments) if e.is_dir(follow_symlinks=False))
    except FileNotFoundError:
        return []
    for folder in experiments:
        for entry in sorted(os.scandir(folder), key=lambda e: e.name):
            head, dash, _ = entry.name.partition("-")
            if not dash or not (head.isascii() and head.isdigit()) or not entry.is_dir(follow_symlinks=False):
                continue
            path = Path(entry.path)
            if int(head) in owned or not ((path / "job.json").exists() or (path / "labels.json").exists()):
                continue
            if now - entry.stat(follow_symlinks=False).st_mtime < GC_GRACE:
                continue
            found.append(path)
    return found


def _owned_by_incoming(queue: JobQueue, owned: set[int]) -> None:
    """Specs a submit is writing right now are owned too."""
    try:
        batches = list(os.scandir(queue.paths.incoming))
    except FileNotFoundError:
        return
    for batch in batches:
        with contextlib.suppress(OSError):
            for name in os.listdir(batch.path):
                with contextlib.suppress(ValueError):
                    owned.add(job_id_of(name))


def remove_orphans(queue: JobQueue, run_dirs: Iterable[Path]) -> list[Path]:
    """Delete these run directories (each moved out of the tree first); returns those deleted."""
    trash = ensure_dir(trash_dir(queue))
    done = []
    for path in run_dirs:
        parked = trash / f"orphan-{os.getpid()}-{path.name}.run"
        try:
            os.rename(path, parked)
        except FileNotFoundError:
            continue
        _delete(parked)
        done.append(path)
    return done


def stale_worker_files(queue: JobQueue, now: float | None = None) -> list[Path]:
    """Files of workers that are gone: stop requests nobody will read, and logs (``queue/workers/*.log``)
    untouched for ``WORKER_LOG_KEEP`` seconds."""
    from expq.queue.workers import live_workers, stop_file

    now = time.time() if now is None else now
    live = {str(info.get("worker_id")) for info in live_workers(queue.paths, now)}
    found = []
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for name in sorted(os.listdir(stop_file(queue.paths, "x").parent)):
            if name not in live:
                found.append(stop_file(queue.paths, name))
    with contextlib.suppress(FileNotFoundError, NotADirectoryError):
        for entry in sorted(os.scandir(queue.paths.workers), key=lambda e: e.name):
            if entry.name.endswith(".log") and entry.name[:-4] not in live:
                with contextlib.suppress(FileNotFoundError):
                    if now - entry.stat(follow_symlinks=False).st_mtime > WORKER_LOG_KEEP:
                        found.append(Path(entry.path))
    return found
