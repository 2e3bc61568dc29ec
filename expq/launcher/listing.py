"""The queue as ``status`` lists it, in 8 bytes a job: the names of every state's folder held as job
ids in arrays, pending ones in schedule order with their places, so that ``status --json`` of
100,000 jobs holds the listing, not 100,000 name strings (its records are made one at a time).
The orders are the ones ``JobQueue.list_names`` and ``JobQueue.pending_names`` give."""
from __future__ import annotations

import heapq
import itertools
import operator
import os
import re
from array import array
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from expq.queue.paths import listed_id
from expq.queue.states import FINISHED, State
from expq.queue.store import JobQueue

if TYPE_CHECKING:
    from _typeshed import SupportsRichComparisonT as _T

__all__ = ["Listing", "Names", "Schedule"]

_COMPACT = 100_000_000  # ids below this have file names of 8 digits, which sort as the numbers do


_COMPACT_NAME = re.compile(r"[0-9]{8}\.json")  # ASCII digits only: int() would take others too


def _compact_name(job: int) -> str:
    return f"{job:08d}.json"


def _merged(first: Iterable[_T], second: list[_T]) -> Iterator[_T]:
    """Two sorted sequences as one; ``second``, the names that are not compact, is nearly always empty."""
    return heapq.merge(first, second) if second else iter(first)


_BATCH = 4096  # names sorted out at a time
_DIGITS = operator.itemgetter(slice(0, 8))


def _listed(folder: str) -> tuple[array[int], list[str]]:
    """The ids of a folder's compact names and its other ``*.json`` names (``_sorted_out``).

    Raises:
        OSError: the folder cannot be listed.
    """
    with os.scandir(folder) as entries:
        return _sorted_out(entry.name for entry in entries)


def _sorted_out(names: Iterable[str]) -> tuple[array[int], list[str]]:
    """The ids of the compact ``<8 digits>.json`` names and the other ``*.json`` names, a batch at a
    time by C loops (``filter``, ``map``), not a Python call per name: the listing of 100,000 pending
    jobs is what ``status --json`` does before its helpers can start."""
    ids: array[int] = array("q")
    odd: list[str] = []
    names = iter(names)
    while batch := list(itertools.islice(names, _BATCH)):
        compact = list(filter(_COMPACT_NAME.fullmatch, batch))
        ids.extend(map(int, map(_DIGITS, compact)))
        if len(compact) < len(batch):  # stray names (claim tokens, other files): rare
            odd.extend(name for name in batch if name.endswith(".json") and not _COMPACT_NAME.fullmatch(name))
    return ids, odd


class Names:
    """The file names of one state's folder, in the order ``JobQueue.list_names`` gives: compact names
    (every finished job's, up to id 99,999,999) as ids in an array, 8 bytes each, any other name (a
    running job's claim token, a stray file) as the string it is."""

    def __init__(self, ids: Iterable[int] = (), odd: Iterable[str] = ()) -> None:
        self.ids = array("q", sorted(ids))
        self.odd = sorted(odd)

    @classmethod
    def of(cls, names: Iterable[str]) -> Names:
        """Some ``*.json`` names, sorted out as a listing is."""
        return cls(*_sorted_out(names))

    @classmethod
    def of_folder(cls, folder: str) -> Names:
        """The ``*.json`` names of a folder (``OSError``: it cannot be listed)."""
        return cls(*_listed(folder))

    def __len__(self) -> int:
        return len(self.ids) + len(self.odd)

    def __iter__(self) -> Iterator[str]:
        return _merged(map(_compact_name, self.ids), self.odd)

    def tail(self, count: int) -> list[str]:
        """The last ``count`` names."""
        return list(_merged(map(_compact_name, self.ids[-count:]), self.odd[-count:]))[-count:]

    def by_id(self) -> Iterator[tuple[int, str]]:
        """(id, name) by id, then name: the order ``status`` shows them in."""
        return _merged(((job, _compact_name(job)) for job in self.ids), sorted((listed_id(n), n) for n in self.odd))

    def only(self, keep: Callable[[int, str], bool]) -> Names:
        return Names.of(name for job, name in self.by_id() if keep(job, name))

    def only_jobs(self, keep: Callable[[int], bool]) -> Names:
        """The names whose job id (-1: none) ``keep`` accepts, without making the compact ones."""
        return Names(filter(keep, self.ids), [name for name in self.odd if keep(listed_id(name))])

    def by_id_of(self, keep: Callable[[int], bool]) -> Iterator[tuple[int, str]]:
        """``by_id`` of the names whose job id ``keep`` accepts; only their names are made."""
        return _merged(((job, _compact_name(job)) for job in self.ids if keep(job)),
                       sorted((job, name) for name in self.odd if keep(job := listed_id(name))))


class Schedule:
    """The names of ``pending/`` (``<bucket>/<priority>/<name>``) in schedule order, as
    ``JobQueue.pending_names`` sorts them (by priority folder, name, then the whole name), each with its
    place in the whole schedule (1: tried first), in 8 bytes per job.

    A compact name is a code, ``(priority rank * _COMPACT + id) * buckets + bucket rank``, which sorts
    as the name does; any other name (a stray file) is the negative code ``-1 - i`` of ``odd[i]``.
    ``places`` are the places of the codes kept by ``only`` and ``head``; None for the whole schedule.
    """

    def __init__(self, priorities: list[str], buckets: list[str], odd: list[tuple[str, str, str]],
                 codes: array[int], places: array[int] | None = None) -> None:
        self.priorities = priorities
        self.buckets = buckets
        self.odd = odd  # (priority, name, whole name), sorted
        self.codes = codes
        self.places = places

    @classmethod
    def listed(cls, queue: JobQueue) -> Schedule:
        """One listing of every bucket and priority folder."""
        folders = [(folder, *prefix.split("/")[:2]) for folder, prefix in queue.pending_folders()]
        priorities = sorted({priority for _, _, priority in folders})
        buckets = sorted({bucket for _, bucket, _ in folders}, key=lambda bucket: f"{bucket}/")
        codes: array[int] = array("q")
        odd: list[tuple[str, str, str]] = []
        for folder, bucket, priority in folders:
            base, rank = priorities.index(priority) * _COMPACT, buckets.index(bucket)
            try:
                ids, names = _listed(folder)
            except (FileNotFoundError, NotADirectoryError):  # as pending_names: gone, or a file
                continue
            codes.extend((base + job) * len(buckets) + rank for job in ids)
            odd.extend((priority, name, f"{bucket}/{priority}/{name}") for name in names)
        schedule = cls(priorities, buckets, sorted(odd), array("q", sorted(codes)))
        if odd:
            schedule.codes = array("q", heapq.merge(schedule.codes, range(-1, -len(odd) - 1, -1), key=schedule._key))
        return schedule

    def __len__(self) -> int:
        return len(self.codes)

    def _key(self, code: int) -> tuple[str, str, str]:
        if code < 0:
            return self.odd[-1 - code]
        name, _ = self._decode(code)
        priority, _, base = name.partition("/")[2].partition("/")
        return priority, base, name

    def _decode(self, code: int) -> tuple[str, int]:
        """The name and job id of a code (-1 for a name that holds no id)."""
        if code < 0:
            name = self.odd[-1 - code][2]
            return name, listed_id(name)
        rest, bucket = divmod(code, len(self.buckets))
        priority, job = divmod(rest, _COMPACT)
        return f"{self.buckets[bucket]}/{self.priorities[priority]}/{_compact_name(job)}", job

    def items(self) -> Iterator[tuple[str, int, int]]:
        """(name, job id, place in the schedule) in schedule order."""
        places = range(1, len(self.codes) + 1) if self.places is None else self.places
        for code, place in zip(self.codes, places):
            yield (*self._decode(code), place)

    def only(self, keep: Callable[[int, str], bool]) -> Schedule:
        return self._kept(keep(job, name) for name, job, _ in self.items())

    def only_jobs(self, keep: Callable[[int], bool]) -> Schedule:
        """The codes whose job id (-1: none) ``keep`` accepts, without making a name for each."""
        return self._kept(map(keep, self.jobs()))

    def _kept(self, flags: Iterable[bool]) -> Schedule:
        """The codes whose flag is true, one flag per code in schedule order, with their places."""
        codes: array[int] = array("q")
        places: array[int] = array("q")
        every = range(1, len(self.codes) + 1) if self.places is None else self.places
        for flag, code, place in zip(flags, self.codes, every):
            if flag:
                codes.append(code)
                places.append(place)
        return Schedule(self.priorities, self.buckets, self.odd, codes, places)

    def named(self, keep: Callable[[int], bool]) -> Iterator[tuple[int, str]]:
        """(job id, name) in schedule order of the jobs ``keep`` accepts; only their names are made."""
        for code, job in zip(self.codes, self.jobs()):
            if keep(job):
                yield job, self._decode(code)[0]

    def jobs(self) -> Iterator[int]:
        """The job ids in schedule order, read from the codes without making a name for each (-1 for
        a name that holds no id)."""
        buckets = len(self.buckets)
        for code in self.codes:
            yield code // buckets % _COMPACT if code >= 0 else self._decode(code)[1]

    def place_of(self, job: int) -> int | None:
        """The place of ``job`` in the schedule (1: tried first), None when it is not listed (``show``
        of one job in 100,000)."""
        for index, listed in enumerate(self.jobs()):
            if listed == job:
                return index + 1 if self.places is None else self.places[index]
        return None

    def head(self, count: int) -> Schedule:
        places = array("q", range(1, count + 1)) if self.places is None else self.places
        return Schedule(self.priorities, self.buckets, self.odd, self.codes[:count], places[:count])


@dataclass
class Listing:
    """Some of the queue's files, as listed: ``pending`` in schedule order, the other states' names."""

    pending: Schedule
    names: dict[State, Names]  # running and the finished states

    @classmethod
    def listed(cls, queue: JobQueue) -> Listing:
        """Pending first, then running, then the finished states: a job that moves meanwhile is seen."""
        pending = Schedule.listed(queue)
        return cls(pending, {state: Names.of_folder(os.fspath(queue.paths.state_dir(state)))
                             for state in State if state is not State.PENDING})

    def counts(self) -> dict[str, int]:
        return {state.value: len(self.pending) if state is State.PENDING else len(self.names[state])
                for state in State}

    def __len__(self) -> int:
        return sum(self.counts().values())

    def __iter__(self) -> Iterator[tuple[State, int, str]]:
        """(state, id, name): pending in schedule order, then each state's by id."""
        for name, job, _ in self.pending.items():
            yield State.PENDING, job, name
        for state, names in self.names.items():
            for job, name in names.by_id():
                yield state, job, name

    def files(self, keep: Callable[[int], bool]) -> Iterator[tuple[State, int, str]]:
        """(state, id, name) of the files whose job id (-1: none) ``keep`` accepts, in the order of
        iteration; only their names are made (a walk of 100,000 names costs 0.2 s)."""
        for job, name in self.pending.named(keep):
            yield State.PENDING, job, name
        for state, names in self.names.items():
            for job, name in names.by_id_of(keep):
                yield state, job, name

    def only(self, keep: Callable[[State, int, str], bool]) -> Listing:
        """The files ``keep(state, id, name)`` accepts, each asked about once, in the order of iteration."""
        return Listing(self.pending.only(partial(keep, State.PENDING)),
                        {state: names.only(partial(keep, state)) for state, names in self.names.items()})

    def only_jobs(self, keep: Callable[[int], bool]) -> Listing:
        """The files whose job id (-1: none) ``keep`` accepts, without making their names."""
        return Listing(self.pending.only_jobs(keep), {state: names.only_jobs(keep) for state, names in self.names.items()})

    def of_states(self, states: Iterable[State]) -> Listing:
        kept = set(states)
        return Listing(self.pending if State.PENDING in kept else self.pending.head(0),
                        {state: names if state in kept else Names() for state, names in self.names.items()})

    def shown(self, order: list[State]) -> Iterator[tuple[State, str, int | None]]:
        """(state, name, place in the schedule) in the order ``status`` shows jobs: finished ones by id
        (one id in several states: in ``order``), then running ones by id, then pending ones in
        schedule order."""
        finished = [_ranked(self.names[state].by_id(), rank, state)
                    for rank, state in enumerate(s for s in order if s in FINISHED)]
        for _, _, name, state in heapq.merge(*finished):
            yield state, name, None
        for _, name in self.names[State.RUNNING].by_id():
            yield State.RUNNING, name, None
        for name, _, place in self.pending.items():
            yield State.PENDING, name, place


def _ranked(named: Iterator[tuple[int, str]], rank: int, state: State) -> Iterator[tuple[int, int, str, State]]:
    for job, name in named:
        yield job, rank, name, state
