"""Claiming: hand each pending job to exactly one of any number of concurrent workers.

The claim is the rename ``pending/<bucket>/<prio>/<id>.json -> running/<id>-<token>.json``; whoever's
rename succeeds owns the job, and the fresh token names this claim in every later move (see
``QueuePaths``). A worker lists only the buckets it can serve, never ``after/`` (jobs waiting for
dependencies, see ``dependents``), and lists again only when the change signal moved (a submit, a
requeue, a promotion) or ``relist_interval`` passed: a claim costs the same behind 100 or 100,000
jobs it cannot run. Specs never change once queued, so parsed specs are kept between claims.
"""
from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from expq.errors import ExpqError, InputError
from expq.queue.paths import AFTER
from expq.queue.security import check_spec_owner
from expq.queue.spec import JobSpec
from expq.queue.states import State
from expq.queue.store import JobQueue, check_file_name, read_queue_file

__all__ = ["Claimer", "Claim", "dependency_block", "new_claim_token"]

R = TypeVar("R")


@dataclass(frozen=True)
class Claim(Generic[R]):
    """A job this process now owns: its spec, what was reserved for it, the token of this claim.
    (A dataclass: a generic NamedTuple needs Python 3.11, and expq supports 3.10.)"""

    spec: JobSpec
    reservation: R
    token: str


def new_claim_token() -> str:
    return os.urandom(4).hex()


def dependency_block(queue: JobQueue, spec: JobSpec, highest_id: int | None = None) -> tuple[str, int] | None:
    """``("wait", dep)`` while a dependency has not finished, ``("cancel", dep)`` once one can never
    succeed (it failed, was cancelled, or its id was never handed out: above ``highest_id``), None
    when every dependency is done. Costs a few stats, never a listing."""
    for dep in spec.after:
        state = next((s for s in (State.DONE, State.FAILED, State.CANCELLED)
                      if queue.paths.job_file(s, dep).exists()), None)
        if state is State.DONE:
            continue
        if state is None and highest_id is not None and dep > highest_id:
            return "unknown", dep
        return ("wait", dep) if state is None else ("cancel", dep)
    return None


class Claimer:
    """Picks the next runnable job in schedule order (priority, then id) and claims it.

    Each bucket is a queue in schedule order and a claim looks at the head of each: a job this worker
    cannot place now (its GPUs are taken) blocks its bucket for this pass, so jobs of one shape cost
    one look per pass, however many wait.
    """

    def __init__(self, queue: JobQueue, relist_interval: float = 30.0,
                 serves: Callable[[str], bool] | None = None) -> None:
        """``serves(bucket)`` says whether this worker could run a bucket's jobs at all (a CPU-only
        worker never lists GPU jobs); ``relist_interval`` is the safety net for a change signal
        missed through a shared filesystem's attribute cache."""
        self.queue = queue
        self.relist_interval = relist_interval
        self.serves = serves
        self._heads: dict[str, deque[str]] = {}
        self._signal: int | None = None
        self._listed_at = float("-inf")
        self._specs: dict[str, JobSpec] = {}
        self.passed_over: list[JobSpec] = []

    def claim(self, reserve: Callable[[JobSpec], R | None], release: Callable[[R], None]) -> Claim[R] | None:
        """Claim the first pending job (of the buckets this worker serves) for which ``reserve``
        returns a reservation (GPUs, a slot), or None; ``passed_over`` then lists, one per bucket,
        the jobs that may run later.

        Malformed or untrusted specs are moved aside; a job whose dependency failed meanwhile (it was
        requeued) is cancelled with the reason, one whose dependency runs again waits in ``after/``.
        """
        signal = self._signal_now()
        if signal != self._signal or time.monotonic() - self._listed_at >= self.relist_interval:
            self._relist(signal)
        self.passed_over = []
        blocked: set[str] = set()
        while (head := self._best_head(blocked)) is not None:
            bucket, spec = head
            block = dependency_block(self.queue, spec) if spec.after else None
            if block is not None:
                self._drop(bucket)
                self._settle_dependency(spec, block)
                continue
            reservation = reserve(spec)
            if reservation is None:
                self.passed_over.append(spec)
                blocked.add(bucket)
                continue
            self._drop(bucket)
            token = new_claim_token()
            if self.queue.move(spec, State.PENDING, State.RUNNING, claim=token):
                return Claim(spec, reservation, token)
            release(reservation)
        return None

    def _signal_now(self) -> int | None:
        try:
            return os.stat(self.queue.paths.changed).st_mtime_ns
        except FileNotFoundError:
            return None

    def _relist(self, signal: int | None) -> None:
        """List the served buckets again (the signal is read first: a change after it is seen next
        time); finish promotions a killed promoter left, and adopt format-1 files an old submit wrote."""
        from expq.queue.dependents import promote_all
        from expq.queue.layout import migrate_flat_pending

        self._signal, self._listed_at = signal, time.monotonic()
        if any(name.endswith(".json") for name in os.listdir(self.queue.paths.state_dir(State.PENDING))):
            migrate_flat_pending(self.queue)
        promote_all(self.queue, self._highest_id)
        heads: dict[str, deque[str]] = {}
        for name in self.queue.pending_names(self._accepts):
            heads.setdefault(name.partition("/")[0], deque()).append(name)
        self._heads = heads
        first = {names[0] for names in heads.values()}
        self._specs = {name: spec for name, spec in self._specs.items() if name in first}

    def _accepts(self, bucket: str) -> bool:
        return bucket != AFTER and (self.serves is None or self.serves(bucket))

    def _best_head(self, blocked: set[str]) -> tuple[str, JobSpec] | None:
        """The bucket whose first readable job comes first in schedule order, and that job."""
        best: tuple[str, str] | None = None
        for bucket, names in self._heads.items():
            if bucket in blocked:
                continue
            while names and self._spec(names[0]) is None:
                names.popleft()
            if names and (best is None or names[0].partition("/")[2] < best[0]):
                best = names[0].partition("/")[2], bucket
        if best is None:
            return None
        return best[1], self._specs[self._heads[best[1]][0]]

    def _drop(self, bucket: str) -> None:
        self._specs.pop(self._heads[bucket].popleft(), None)

    def _highest_id(self) -> int | None:
        from expq.queue.ids import last_id  # lazily: filelock costs `expq status` 75 ms at start-up

        try:
            return last_id(self.queue.paths)
        except (OSError, ValueError, ExpqError):  # a damaged counter: unknown ids are then only waited on
            return None

    def _spec(self, name: str) -> JobSpec | None:
        cached = self._specs.get(name)
        if cached is not None:
            return cached
        path = self.queue.paths.state_dir(State.PENDING) / name
        try:
            raw, info = read_queue_file(path)
        except FileNotFoundError:
            return None
        except InputError as exc:
            self.queue.reject(State.PENDING, name, str(exc))
            return None
        reason = check_spec_owner(path, info)
        if reason is not None:
            self.queue.reject(State.PENDING, name, reason)
            return None
        try:
            spec = JobSpec.from_json(raw)
            check_file_name(name, spec, State.PENDING)
        except InputError as exc:
            self.queue.reject(State.PENDING, name, str(exc))
            return None
        self._specs[name] = spec
        return spec

    def _settle_dependency(self, spec: JobSpec, block: tuple[str, int]) -> None:
        """A requeued job whose dependency is not done: it waits in ``after/`` again, or is cancelled."""
        from expq.queue.dependents import cancel_for_dependency

        if block[0] == "wait":
            self.queue.place_pending(self.queue.paths.pending_file(spec), spec, waiting=True)
        else:
            cancel_for_dependency(self.queue, spec, block)
