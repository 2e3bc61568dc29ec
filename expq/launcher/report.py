"""Collecting what ``status`` and ``show`` display: one record per job, from the files the queue,
the worker and cancel write.

Counting comes from directory listings alone. A record needs the job's spec and, once it ran, its
latest attempt or its ``result.json``, so only the jobs that are shown are read: ``expq status`` on
100,000 finished jobs reads a few dozen files. Every file may be absent or torn (a worker killed
mid-write, a power loss). A file that is absent is simply not there yet; one that exists but cannot
be read (a run directory that is a file, a ``result.json`` that is a directory or torn) is a
condition the user must see (``run_files``): the job is still listed, with the condition as its
reason, and ``status`` never fails because of one job's files.

Filters narrow the counts too: ``status --experiment E`` counts E's jobs, which needs every spec of
the queue read once (the experiment is not in the file names), in blocks that forked helpers share.

``status --json`` shows every job, so its cost and memory follow the queue: the listing is held as
ids in arrays (8 bytes a job, ``listing.Listing``) and records are made and written in blocks, so
memory does not grow with the queue, and forked helpers make every other block (``fan_out``). A
pending job that never started (most of a big queue) takes a fast path that reads and checks its
spec file as the full path does but builds no ``JobSpec`` and no paths (``_Unstarted``), and its line of
``status --json`` fills a template of the record with its own values (``status_json.LineTemplate``); a finished
job's spec is read the same way (``_SpecFiles``), its run files as the full path reads them.
"""
from __future__ import annotations

import json
import os
import time
from array import array
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from expq.errors import InputError, NotFound
from expq.fan_out import helpers_for_this_machine, ordered_blocks
from expq.launcher.listing import Listing, Names, Schedule
from expq.launcher.run_files import (
    may_have_attempts,
    read_gpu_reasons,
    read_gpu_usage,
    read_result,
    read_run_attempts,
    read_run_lease,
)
from expq.launcher.status_json import LineTemplate, encode_number, encode_record, encode_string, job_lines, slot
from expq.queue.claim import dependency_block
from expq.queue.labels import read_labels, tagged_run_dirs
from expq.queue.paths import QueuePaths, RunPaths, listed_id, pending_bucket
from expq.queue.result import gpu_shape_key
from expq.queue.selection import state_in
from expq.queue.spec import JobSpec, check_spec
from expq.queue.states import FINISHED, State
from expq.queue.store import JobQueue, read_queue_file
from expq.queue.workers import live_workers

__all__ = ["Query", "Snapshot", "Members", "Workers", "Waiting", "collect", "record", "show", "waiting",
           "RECENT_FINISHED", "PENDING_SHOWN"]

RECENT_FINISHED = 10
RECENT_WINDOW = 200  # newest finished ids per state among which the most recently finished are found
PENDING_SHOWN = 50
STREAM_BLOCK = 500  # records per block of status --json: about 300 KiB of JSON (600 bytes a job)


@dataclass(frozen=True)
class Query:
    """Which jobs to list. Default: the active ones plus the ``RECENT_FINISHED`` last finished."""

    ids: tuple[int, ...] = ()
    states: tuple[str, ...] = ()
    experiment: str | None = None
    everything: bool = False
    tag: str | None = None

    @property
    def filtered(self) -> bool:
        """True when only some jobs match, so the counts are of those jobs, not of the queue."""
        return bool(self.ids or self.states or self.experiment is not None or self.tag is not None)


@dataclass
class Snapshot:
    """What ``status`` shows.

    ``counts`` are the jobs per state that match the query's filters (ids, states, experiment), the
    whole queue when nothing filters; ``queue_counts`` are always the whole queue's. ``jobs`` come
    finished first (by id), then running (by id), then pending in schedule order; each pending
    record's ``queue_position`` is its place in that order (1: tried first).
    """

    counts: dict[str, int]
    jobs: list[dict[str, Any]]
    hidden: int = 0  # jobs that match the filters but were left out of the default view
    workers: int = 0
    queue_counts: dict[str, int] = field(default_factory=dict)
    filtered: bool = False


class Workers:
    """The live workers' GPU counts, read once per snapshot."""

    def __init__(self, queue: JobQueue, now: float) -> None:
        self.problem = ""
        try:
            infos = live_workers(queue.paths, now)
        except OSError as exc:  # workers/ replaced by a file, unreadable: say so, list the jobs anyway
            infos = []
            self.problem = f"cannot read the workers folder ({exc.strerror or type(exc).__name__})"
        self.gpus = [len(g) if isinstance(g := info.get("gpus"), list) else 0 for info in infos]
        self._paths = queue.paths
        self._ids = [str(info.get("worker_id", "")) for info in infos if isinstance(info.get("gpus"), list)
                     and info.get("gpus")]
        self._reasons: list[dict[str, str]] | None = None  # read when a GPU job is first asked about
        self._said: dict[tuple[int, int | None], str] = {}

    def why_waiting(self, gpus: int, gpu_mem: int | None = None) -> str:
        """Why a pending job that needs ``gpus`` GPUs (``gpu_mem`` bytes on each) cannot start now, as the
        workers with GPUs last said (memory, other users' processes); "" when it only awaits its turn.
        Every job of one shape gets the same answer, worked out once: a sweep of 100,000 asks 100,000 times."""
        said = self._said.get((gpus, gpu_mem))
        if said is None:
            said = self._said[gpus, gpu_mem] = self._why(gpus, gpu_mem)
        return said

    def _why(self, gpus: int, gpu_mem: int | None) -> str:
        if not self.gpus:
            return self.problem or "no live worker"
        if gpus > max(self.gpus):
            return f"needs {gpus} GPU{'s' if gpus != 1 else ''} (largest worker has {max(self.gpus)})"
        if gpus == 0:
            return ""
        if self._reasons is None:
            self._reasons = [read_gpu_reasons(self._paths, worker_id) for worker_id in self._ids]
        key = gpu_shape_key(gpus, gpu_mem)
        said = [reasons[key] for reasons in self._reasons if key in reasons]
        # a worker that names no reason may start the job when its turn comes: then it only waits
        return said[0] if said and len(said) == len(self._reasons) else ""


def _pending_reason(queue: JobQueue, spec: JobSpec, workers: Workers) -> str:
    block = dependency_block(queue, spec)
    if block is not None:
        verdict, dep = block
        return f"after {dep}" if verdict == "wait" else f"after {dep}, which did not succeed"
    return workers.why_waiting(spec.gpus, spec.gpu_mem)


def record(queue: JobQueue, state: State, spec: JobSpec, workers: Workers | None, now: float,
           position: int | None = None) -> dict[str, Any]:
    """The ``status --json`` record of one job (also the row of the table).

    A run file that exists but cannot be read adds its condition to ``reason``; it never raises.
    """
    run = queue.paths.run(spec.run_dir)
    rec = _base_record(vars(spec), state, str(run.dir), position)
    if state in FINISHED:
        return _finished(rec, run)
    # A job that never started has no run directory: one failed stat instead of a look for each file.
    started = state is not State.PENDING or os.path.isdir(run.dir)
    if started:
        _add_labels(rec, run)
    problems: list[str] = []
    if state is State.PENDING:
        attempts = read_run_attempts(run, problems) if started and may_have_attempts(run, problems) else []
        rec["attempts"] = attempts[-1].number if attempts else 0
        if workers is not None:
            rec["reason"] = _pending_reason(queue, spec, workers)
    else:
        lease = read_run_lease(queue.paths, spec.id, problems)  # a running attempt's record is its lease
        if lease is None and not problems:  # a moment after the claim; for good if its worker died then
            rec["reason"] = "no lease: being started, or its worker died while starting it"
        attempts = [lease.attempt] if lease is not None else read_run_attempts(run, problems)
        if attempts:
            last = attempts[-1]
            rec.update(attempts=last.number, host=last.host, gpus=list(last.gpus), started_at=last.started_at,
                       slurm_job=last.slurm_job or None, elapsed=max(0.0, now - last.started_at))
            if last.gpus:
                rec["gpu_mem_bytes"], rec["gpu_util"] = read_gpu_usage(run, last.started_at)
    return _with_problems(rec, problems)


def _add_labels(rec: dict[str, Any], run: RunPaths) -> None:
    labels = read_labels(run.dir)
    rec["tags"], rec["note"] = list(labels.tags), labels.note


def _with_problems(rec: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    """``rec`` with the conditions of its unreadable files added to its reason."""
    if problems:
        rec["reason"] = "; ".join(dict.fromkeys(r for r in (rec["reason"], *problems) if r))
    return rec


def _base_record(spec: dict[str, Any], state: State, run_dir: str, position: int | None) -> dict[str, Any]:
    """A record before any run file is read. ``spec`` holds the spec's fields by name: a ``JobSpec``'s
    (its ``vars``) or, for the fast path, a spec file's JSON that passed ``check_spec``."""
    return {
        "id": spec["id"], "state": state.value, "experiment": spec["experiment"], "name": spec["name"],
        "command": list(spec["command"]), "config": spec["config"], "gpus": [], "gpus_requested": spec["gpus"],
        "attempts": 0, "exit_code": None, "signal": None, "reason": "", "run_dir": run_dir,
        "submitted_at": spec["submitted_at"], "started_at": None, "finished_at": None, "duration": None,
        "elapsed": None, "host": None, "priority": spec["priority"], "after": list(spec["after"]),
        "retries": spec["retries"], "timeout": spec["timeout"], "slurm_job": None, "cwd": spec["cwd"],
        "user": spec["user"], "queue_position": position if state is State.PENDING else None,
        "tags": [], "note": "", "warnings": [],
        "gpu_mem": spec.get("gpu_mem"), "gpu_mem_bytes": None, "gpu_util": None, "peak_gpu_mem_bytes": None,
    }


def _finished(rec: dict[str, Any], run: RunPaths) -> dict[str, Any]:
    """``rec`` of a finished job, completed from its run files: labels, then its result (or attempts)."""
    _add_labels(rec, run)
    problems: list[str] = []
    result = read_result(run, problems)
    if result is None:  # not written (cancelled before it ran) or unreadable: fall back on the attempts
        attempts = read_run_attempts(run, problems)
        if attempts:
            last = attempts[-1]
            result = {"attempts": last.number, "host": last.host, "gpus": list(last.gpus),
                      "started_at": last.started_at, "finished_at": last.finished_at, "exit_code": last.exit_code,
                      "signal": last.signal, "reason": last.reason, "slurm_job": last.slurm_job}
        else:
            result = {}
    for key, kinds in _RESULT_TYPES.items():
        value = result.get(key)
        if isinstance(value, kinds) and not isinstance(value, bool) and value != "":
            rec[key] = value  # a value of another type (a foreign or damaged file) is left out
    warnings = result.get("warnings")
    if isinstance(warnings, list):
        rec["warnings"] = [w for w in warnings if isinstance(w, str)]
        if not rec["reason"] and rec["warnings"]:  # a done job has no reason: its warnings take the column
            rec["reason"] = "; ".join(rec["warnings"])
    if rec["duration"] is None and rec["started_at"] is not None and rec["finished_at"] is not None:
        rec["duration"] = max(0.0, rec["finished_at"] - rec["started_at"])
    rec["elapsed"] = rec["duration"]
    return _with_problems(rec, problems)


_RESULT_TYPES: dict[str, tuple[type, ...]] = {
    "attempts": (int,), "exit_code": (int,), "signal": (str, int), "reason": (str,), "host": (str,), "gpus": (list,),
    "started_at": (int, float), "finished_at": (int, float), "duration": (int, float), "slurm_job": (str,),
    "peak_gpu_mem_bytes": (int,)}


# -- choosing the jobs to show ---------------------------------------------------------------------

def _read_spec(queue: JobQueue, state: State, name: str) -> tuple[State, JobSpec] | None:
    """The spec of a listed job; it may have moved on since the listing, or be malformed."""
    try:
        return state, queue.read(state, name)
    except FileNotFoundError:
        try:
            return queue.get(listed_id(name))
        except (NotFound, InputError, OSError, RecursionError):
            return None
    except (InputError, OSError, RecursionError):  # malformed, a directory, nested too deep: not listed
        return None


class Members:
    """Which jobs belong to one experiment, remembered by id. A spec never changes, so a job read once
    is never read again: ``status --watch --experiment`` reads every spec at its first frame and, at
    each later one, only the specs of jobs submitted since (a frame of 100,000 jobs read them all).

    Marks are 0 (not read yet), 1 (not of the experiment) or 2 (of it): a byte per id below
    ``_DENSE_IDS`` (ids are handed out in order), a dict entry above it, where only a file put in the
    queue by hand can be (``99999999999999.json`` must not cost a byte per id below it)."""

    _DENSE_IDS = 1 << 24

    def __init__(self, experiment: str) -> None:
        self.experiment = experiment
        self._dense = bytearray()
        self._sparse: dict[int, int] = {}

    def select(self, listing: Listing, read: Callable[[Iterator[tuple[State, int, str]]], bytes]) -> Listing:
        """The files of ``listing`` that are the experiment's; ``read`` gives the marks (1: of it) of
        the files not read before, one byte each, in the order it is handed them.

        They are handed over lazily: forked helpers walk them too, and a list made before the fork
        would be copied into each helper page by page (0.1 s for 100,000 jobs)."""
        dense, sparse, unread = self._dense, self._sparse, []

        def mark(job: int) -> int:  # -1: a stray file, no job's; never read, never of the experiment
            return dense[job] if 0 <= job < len(dense) else sparse.get(job, 0 if job >= 0 else 1)

        def walk() -> Iterator[tuple[State, int, str]]:
            for entry in listing.files(lambda job: not mark(job)):
                unread.append(entry[1])
                yield entry

        marks = read(walk())
        highest = max((job for job in unread if job < self._DENSE_IDS), default=-1)
        dense.extend(bytes(max(0, highest + 1 - len(dense))))
        for job, found in zip(unread, marks):
            if job < self._DENSE_IDS:
                dense[job] = 1 + found
            else:
                sparse[job] = 1 + found
        return listing.only_jobs(lambda job: mark(job) == 2)


def _of_experiment(queue: JobQueue, listing: Listing, members: Members, helpers: int) -> Listing:
    """The files of the experiment's jobs. File names do not say it, so every spec not yet in
    ``members`` is read for its experiment field (``selection.state_in``: no full validation; a
    malformed spec is counted, as in the listings, but not shown); in blocks that forked helpers
    share (``fan_out``): ``status --experiment`` on 100,000 jobs reads 100,000 files."""
    folders = {state: os.fspath(queue.paths.state_dir(state)) for state in State}

    def marks(block: list[tuple[State, int, str]]) -> bytes:
        return bytes(state_in(queue, members.experiment, state, f"{folders[state]}/{name}") is not None
                     for state, _, name in block)

    return members.select(listing, lambda files: b"".join(ordered_blocks(files, marks, STREAM_BLOCK, helpers)))


def _recent(queue: JobQueue, listing: Listing, limit: int) -> dict[State, Names]:
    """The ``limit`` most recently finished jobs, by state.

    The rename into a finished state is the moment a job ended, and it sets the file's ctime. Only
    the newest ``RECENT_WINDOW`` ids of each finished state are stat-ed (finished names sort by id),
    so this costs a few hundred stats however many jobs have finished.
    """
    stamped = []
    for state in FINISHED:
        for name in listing.names[state].tail(RECENT_WINDOW):
            try:
                stamped.append((os.stat(queue.paths.state_dir(state) / name).st_ctime, listed_id(name), state, name))
            except FileNotFoundError:
                continue
    stamped.sort()
    return {state: Names.of(name for _, _, s, name in stamped[-limit:] if s is state) for state in FINISHED}


def _default_view(queue: JobQueue, listing: Listing) -> Listing:
    """Every running job, the first ``PENDING_SHOWN`` pending ones and the most recently finished."""
    return Listing(listing.pending.head(PENDING_SHOWN),
                    {State.RUNNING: listing.names[State.RUNNING], **_recent(queue, listing, RECENT_FINISHED)})


def _of_ids(listing: Listing, ids: tuple[int, ...], wanted: list[State]) -> Listing:
    """The files of the jobs ``ids`` in the ``wanted`` states: of a job listed twice (it moved during
    the listing), the file listed last.

    Raises:
        NotFound: one of ``ids`` is no job of this listing.
    """
    asked = set(ids)
    where = {job: (state, name) for state, job, name in listing if job in asked}
    missing = [job for job in ids if job not in where]
    if missing:
        raise NotFound("job", missing[0])
    picked = {where[job] for job in ids if where[job][0] in wanted}
    return listing.only(lambda state, job, name: (state, name) in picked)


def collect(queue: JobQueue, query: Query, now: float | None = None, helpers: int = 0,
            members: Members | None = None) -> Snapshot:
    """Counts per state of the jobs the query matches, and their records: finished ones by id,
    then running ones by id, then pending ones in schedule order (priority, then id).

    With no ids, states or ``everything`` asked for, the view is: every running job, the first
    ``PENDING_SHOWN`` pending ones in the order they will run, and the ``RECENT_FINISHED`` most
    recently finished; ``Snapshot.hidden`` counts the rest. ``query.experiment`` reads every spec
    of the states asked for (the counts need each job's experiment), with ``helpers`` forked
    processes (see ``fan_out``: only from a process without other threads; the dashboard's has them);
    ``members`` remembers what was read for the next call (``status --watch``).

    Raises:
        NotFound: one of ``query.ids`` is no job of this queue.
    """
    now = time.time() if now is None else now
    chosen = _select(queue, query, helpers, members)
    workers = Workers(queue, now)
    jobs = _RecordMaker(queue, chosen, workers, now).records(chosen.listing.shown(chosen.order))
    return Snapshot(counts=chosen.counts, jobs=jobs, hidden=chosen.hidden, workers=len(workers.gpus),
                    queue_counts=chosen.queue_counts, filtered=query.filtered)


def stream(queue: JobQueue, query: Query, now: float | None = None,
           helpers: int | None = None) -> tuple[dict[str, int], Iterator[bytes]]:
    """The counts, and the records of ``collect`` in the same order, encoded (``status_json``) in
    blocks of ``STREAM_BLOCK``: ``status --json`` of 100,000 jobs holds a few blocks and the listing
    as ids, not names (see ``Listing``). With more than one CPU, ``helpers`` forked processes
    (default: one per further CPU, see ``fan_out``) make and encode every other block."""
    now = time.time() if now is None else now
    helpers = helpers_for_this_machine() if helpers is None else helpers
    chosen = _select(queue, query, helpers)
    maker = _RecordMaker(queue, chosen, Workers(queue, now), now)
    return chosen.counts, ordered_blocks(chosen.listing.shown(chosen.order), maker.lines, STREAM_BLOCK, helpers)


@dataclass
class _Chosen:
    """The jobs a query selects, and what is said about them."""

    listing: Listing
    order: list[State]  # the states asked for, in the order asked
    counts: dict[str, int]
    hidden: int
    queue_counts: dict[str, int]


def _select(queue: JobQueue, query: Query, helpers: int, members: Members | None = None) -> _Chosen:
    listing = Listing.listed(queue)
    queue_counts = listing.counts()
    if query.tag is not None:  # only the tagged jobs: the rest of the view works on their listing
        tagged = tagged_run_dirs(queue.paths.experiments, query.tag)
        listing = listing.only_jobs(lambda job: job in tagged)
    wanted = list(dict.fromkeys(State(s) for s in query.states)) if query.states else list(State)
    hidden = 0
    if query.ids:
        chosen = matching = _of_ids(listing, query.ids, wanted)
    else:
        matching = listing.of_states(wanted)
        if query.experiment is not None:
            if members is None or members.experiment != query.experiment:
                members = Members(query.experiment)
            matching = _of_experiment(queue, matching, members, helpers)
        if query.everything or query.states:
            chosen = matching
        else:
            chosen = _default_view(queue, matching)
            hidden = len(matching) - len(chosen)
    return _Chosen(chosen, wanted, matching.counts(), hidden, queue_counts)


class _RecordMaker:
    """The records of listed jobs (see ``Listing.shown``); a job that vanished in between is left out."""

    def __init__(self, queue: JobQueue, chosen: _Chosen, workers: Workers, now: float) -> None:
        self._queue = queue
        self._workers = workers
        self._now = now
        run_dirs = _RunDirs(queue.paths.experiments, listed=len(chosen.listing.pending) >= _LIST_RUN_DIRS_FROM)
        self._specs = _SpecFiles(queue)
        self._unstarted = _Unstarted(queue, workers, run_dirs, self._specs)

    def records(self, listed: Iterable[tuple[State, str, int | None]]) -> list[dict[str, Any]]:
        made = []
        for state, name, place in listed:
            rec = self._unstarted.record(name, place) if place is not None else None
            if rec is None:
                rec = self._other(state, name, place)
            if rec is not None:
                made.append(rec)
        return made

    def lines(self, listed: Iterable[tuple[State, str, int | None]]) -> bytes:
        """The records, encoded for ``status --json``; a never-started pending job's straight from its
        spec (``_Unstarted.line``)."""
        made = []
        for state, name, place in listed:
            line = self._unstarted.line(name, place) if place is not None else None
            if line is None:
                rec = self._other(state, name, place)
                if rec is None:
                    continue
                line = encode_record(rec)
            made.append(line)
        return job_lines(made)

    def _other(self, state: State, name: str, place: int | None) -> dict[str, Any] | None:
        """The record of a job the never-started path left (or did not take)."""
        rec = self._finished_record(state, name) if state in FINISHED else None
        return self._full(state, name, place) if rec is None else rec

    def _finished_record(self, state: State, name: str) -> dict[str, Any] | None:
        """The record of a finished job from its spec file's checked dict, without the ``JobSpec`` and
        the file-name checks of ``_read_spec`` (15% of the full path's CPU); None for what the full
        path must judge (see ``_SpecFiles``; a file whose name is not the spec's)."""
        spec = self._specs.read(state, name)
        if spec is None or name != QueuePaths.file_name(state, spec["id"]):
            return None
        run = self._queue.paths.run(spec["run_dir"])
        return _finished(_base_record(spec, state, str(run.dir), None), run)

    def _full(self, state: State, name: str, place: int | None) -> dict[str, Any] | None:
        found = _read_spec(self._queue, state, name)
        return None if found is None else record(self._queue, found[0], found[1], self._workers, self._now, place)


# -- the fast path: pending jobs that never started ----------------------------------------------------

_ID_DIGITS = 18  # the longest id an 8-byte array entry holds; a longer one only a hand-made name carries
_LIST_RUN_DIRS_FROM = 1000  # pending jobs shown: from this many, a listing of their experiments costs less


class _RunDirs:
    """Whether a job's run directory exists: it does not for a job that never started.

    A stat each costs 100,000 failed lookups for ``status --json`` of a sweep waiting for GPUs. With
    ``listed``, each experiment folder is listed once instead, as the ids of its ``<id>-<name>``
    entries in a sorted array (8 bytes each), and only a job whose id is there is stat-ed. A table
    shows 50 pending jobs at most, for which stats cost less than listing a folder of a whole sweep.
    """

    def __init__(self, experiments: Path, listed: bool) -> None:
        self._experiments = os.fspath(experiments)
        self._listed = listed
        self._ids: dict[str, array[int] | None] = {}

    def exists(self, experiment: str, job: int, run_dir: str) -> bool:
        """Whether ``run_dir``, the run directory of ``job`` in ``experiment``, is a folder."""
        ids = self._folder_ids(experiment) if self._listed and job < 10 ** _ID_DIGITS else None
        if ids is not None:
            at = bisect_left(ids, job)
            if at == len(ids) or ids[at] != job:
                return False
        return os.path.isdir(run_dir)

    def _folder_ids(self, experiment: str) -> array[int] | None:
        """The ids of an experiment folder's entries; None when it cannot be listed (stat each job)."""
        if experiment not in self._ids:
            ids: array[int] = array("q")
            try:
                with os.scandir(f"{self._experiments}/{experiment}") as entries:
                    for entry in entries:
                        head, dash, _ = entry.name.partition("-")
                        if dash and head.isascii() and head.isdigit() and len(head) <= _ID_DIGITS:
                            ids.append(int(head))
            except (FileNotFoundError, NotADirectoryError):  # no folder: no run directory in it either
                pass
            except OSError:
                self._ids[experiment] = None
                return None
            self._ids[experiment] = array("q", sorted(ids))
        return self._ids[experiment]


# The C scanner that raw_decode calls, without raw_decode's Python frame (an attribute that typeshed lacks).
_SCAN: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


class _SpecFiles:
    """Spec files read as the checked dicts they hold, without a ``JobSpec`` or ``Path``."""

    def __init__(self, queue: JobQueue) -> None:
        self._folders = {state: os.fspath(queue.paths.state_dir(state)) for state in State}

    def read(self, state: State, name: str) -> dict[str, Any] | None:
        """The JSON of a whole spec file (see ``check_spec``); None for anything the full path must
        judge. Parsed as ``json.loads`` would, but without its look for the encoding and for
        whitespace around the value: a file that has either is left to the full path."""
        try:
            raw, _ = read_queue_file(f"{self._folders[state]}/{name}")
            text = raw.decode()
            data, end = _SCAN(text, 0)
            return data if end == len(text) and check_spec(data) else None
        except (OSError, ValueError, StopIteration, RecursionError, InputError):  # gone, not a small regular
            return None  # file, not JSON (StopIteration: no value at all), not a spec


def _unstarted_line() -> LineTemplate:
    """The line of a never-started pending job, cut from ``_base_record`` (its one layout): its slots are
    the values of ``_Unstarted.line``, in that order; ``after`` is empty on that path."""
    fields = ("id", "experiment", "name", "command", "config", "gpus", "submitted_at", "priority", "retries",
              "timeout", "cwd", "user", "gpu_mem")
    spec: dict[str, Any] = {key: slot(number) for number, key in enumerate(fields)}
    spec["command"], spec["after"] = [spec["command"]], []  # the slot stands for the command's items
    rec = _base_record(spec, State.PENDING, slot(len(fields)), None)
    rec["queue_position"], rec["reason"] = slot(len(fields) + 1), slot(len(fields) + 2)
    return LineTemplate(rec, len(fields) + 3)


_LINE = _unstarted_line()


class _Unstarted:
    """Records of pending jobs that never started, from their spec file alone.

    A big queue is mostly such jobs (a sweep waiting for GPUs), and the full path (``_read_spec``, then
    ``record``) costs about 100 µs each: a ``JobSpec``, ``Path`` objects, checks of the file name, a
    stat of the run directory, the reason worked out again. This one reads the file once, checks the
    parsed dict with ``check_spec`` (the checks ``JobSpec.from_dict`` makes), compares the file name
    with the one the spec implies, and asks for the reason of the job's GPU shape, which ``Workers``
    works out once. Anything else (a file that moved, is not a small regular file or not a valid
    spec, a spec without every field, dependencies, a name that does not match, a run directory that
    exists) gets None: the full path then gives the record, or leaves the job out, as it always did.
    """

    def __init__(self, queue: JobQueue, workers: Workers, run_dirs: _RunDirs, specs: _SpecFiles) -> None:
        self._root = os.path.join(queue.root, "")
        self._workers = workers
        self._run_dirs = run_dirs
        self._folders: dict[tuple[int, int | None, int], str] = {}
        self._specs = specs

    def record(self, name: str, place: int) -> dict[str, Any] | None:
        found = self._spec(name)
        if found is None:
            return None
        spec, run_dir = found
        rec = _base_record(spec, State.PENDING, run_dir, place)
        rec["reason"] = self._workers.why_waiting(spec["gpus"], spec.get("gpu_mem"))
        return rec

    def line(self, name: str, place: int) -> str | None:
        """``encode_record(record(name, place))``, with only the values that vary encoded (``_LINE``)."""
        found = self._spec(name)
        if found is None:
            return None
        spec, run_dir = found
        timeout, gpu_mem = spec["timeout"], spec.get("gpu_mem")
        return _LINE.fill((
            repr(spec["id"]), encode_string(spec["experiment"]), encode_string(spec["name"]),
            ",".join(map(encode_string, spec["command"])), encode_record(spec["config"]), repr(spec["gpus"]),
            encode_number(spec["submitted_at"]), repr(spec["priority"]), repr(spec["retries"]),
            "null" if timeout is None else encode_number(timeout), encode_string(spec["cwd"]),
            encode_string(spec["user"]), "null" if gpu_mem is None else repr(gpu_mem), encode_string(run_dir),
            repr(place), encode_string(self._workers.why_waiting(spec["gpus"], gpu_mem))))

    def _spec(self, name: str) -> tuple[dict[str, Any], str] | None:
        """The checked spec of a pending file, and its run directory, when the job never started."""
        spec = self._specs.read(State.PENDING, name)
        if spec is None or spec["after"]:
            return None
        if name != f"{self._folder(spec)}{spec['id']:08d}.json":  # QueuePaths.file_name, its folder cached
            return None
        run_dir = self._root + spec["run_dir"]  # str(root / run_dir): a checked run_dir has nothing to normalise
        if self._run_dirs.exists(spec["experiment"], spec["id"], run_dir):  # it ran before, or was tagged
            return None
        return spec, run_dir

    def _folder(self, spec: dict[str, Any]) -> str:
        """``<bucket>/<inverted priority>/`` of the spec, worked out once per GPU shape and priority
        (``pending_bucket`` wants a ``JobSpec``)."""
        key = spec["gpus"], spec.get("gpu_mem"), spec["priority"]
        folder = self._folders.get(key)
        if folder is None:
            name = QueuePaths.file_name(State.PENDING, 0, spec["priority"], bucket=pending_bucket(JobSpec.from_dict(spec)))
            folder = self._folders[key] = name.rpartition("/")[0] + "/"
        return folder


def show(queue: JobQueue, job_id: int) -> dict[str, Any]:
    """Everything known about one job: its record, spec, paths, attempts and result. Unreadable run
    files leave their part empty and say why in ``job.reason``. A job that has not ended (again) has
    no ``result``; the ``result.json`` of an earlier attempt is ``earlier_result``.

    Raises:
        NotFound: no job has this id.
    """
    state, spec = queue.get(job_id)
    run = queue.paths.run(spec.run_dir)
    now = time.time()
    position = None
    if state is State.PENDING:
        position = Schedule.listed(queue).place_of(job_id)
    ignored: list[str] = []  # the record already names every condition
    details = {
        "version": 1,
        "job": record(queue, state, spec, Workers(queue, now) if state is State.PENDING else None, now, position),
        "spec": spec.to_dict(),
        "paths": {"run_dir": str(run.dir), "stdout": str(run.stdout), "stderr": str(run.stderr),
                  "config": str(run.config), "env": str(run.env), "result": str(run.result),
                  "job": str(run.job)},
        "attempts": [a.to_dict() for a in read_run_attempts(run, ignored)],
        "result": read_result(run, ignored),
    }
    if state not in FINISHED and details["result"] is not None:
        # a retried or re-queued job keeps its last result.json until it ends again: that one is history
        details["earlier_result"] = details["result"]
        details["result"] = None
    return details


# -- for submit --wait -------------------------------------------------------------------------------

@dataclass(frozen=True)
class Waiting:
    """Where some jobs stand: which ended and how, how many run and wait, why the next waiting one
    cannot start, and which are no longer in the queue at all (removed while someone waited)."""

    running: int
    pending: int
    reason: str  # of the first pending job in schedule order; "" when it only awaits its turn
    ended: dict[int, State] = field(default_factory=dict)
    gone: tuple[int, ...] = ()


def waiting(queue: JobQueue, ids: Iterable[int], now: float | None = None) -> Waiting:
    """Where ``ids`` stand, with the reason ``status`` gives for the next one to run: the listing of
    ``status`` (ids in arrays, no names made) and one spec read, cheap enough to poll.

    The states are listed in the order jobs move through them (pending, running, finished), so a job
    that moves meanwhile is seen at least once; one seen nowhere is looked up again before it is
    called gone.
    """
    wanted = set(ids)
    listing = Listing.listed(queue)
    pending = [job for job in listing.pending.jobs() if job in wanted]
    running = {job for job, _ in listing.names[State.RUNNING].by_id() if job in wanted}
    ended = {job: state for state in FINISHED for job, _ in listing.names[state].by_id() if job in wanted}
    running -= ended.keys()
    pending = [job for job in pending if job not in running and job not in ended]
    seen = {*pending, *running, *ended}
    gone = tuple(sorted(job for job in wanted - seen if queue.state_of(job) is None))
    reason = ""
    if pending:
        try:
            state, spec = queue.get(pending[0])
        except (NotFound, OSError, RecursionError):  # gone meanwhile, not a valid spec, unreadable
            state = None
        if state is State.PENDING:
            reason = _pending_reason(queue, spec, Workers(queue, time.time() if now is None else now))
    return Waiting(running=len(running), pending=len(pending), reason=reason, ended=ended, gone=gone)
