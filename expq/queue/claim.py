"""Claiming: hand each pending job to exactly one of any number of concurrent workers.

The claim is the rename ``pending/<prio>-<id>.json -> running/<id>-<token>.json``; whoever's rename
succeeds owns the job, and the fresh token names this claim in every later move (see ``QueuePaths``). Specs never change once queued, so the claimer caches parsed specs and the sorted
listing (refreshed when used up or older than ``relist_interval``): a worker draining thousands of
jobs does not list and parse the whole queue for each one.
"""
from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from expq.errors import ExpqError, InputError
from expq.queue.result import Result
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
    return secrets.token_hex(4)


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
    """Picks the next runnable job in schedule order (priority, then id) and claims it."""

    def __init__(self, queue: JobQueue, relist_interval: float = 0.5) -> None:
        self.queue = queue
        self.relist_interval = relist_interval
        self._names: list[str] = []
        self._listed_at = float("-inf")
        self._specs: dict[str, JobSpec] = {}
        self.passed_over: list[JobSpec] = []

    def claim(self, reserve: Callable[[JobSpec], R | None], release: Callable[[R], None]) -> Claim[R] | None:
        """Claim the first pending job whose dependencies are done and for which ``reserve`` returns a
        reservation (GPUs, a slot), or None; ``passed_over`` then lists the jobs that may run later.

        Jobs whose dependency failed or was cancelled are cancelled on the way, with the reason;
        malformed or untrusted specs are moved aside.
        """
        now = time.monotonic()
        if not self._names or now - self._listed_at > self.relist_interval:
            self._names = self.queue.list_names(State.PENDING)
            self._listed_at = now
            listed = set(self._names)
            self._specs = {n: s for n, s in self._specs.items() if n in listed}
        self.passed_over = []
        highest: int | None = None
        index = 0
        # No copy of the listing per claim (it may hold 100,000 names). A name that is forgotten
        # leaves the list, so the next one moves to the same index.
        while index < len(self._names):
            name = self._names[index]
            spec = self._spec(name)
            if spec is None:
                continue
            block = dependency_block(self.queue, spec, highest)
            if block is not None and block[0] == "wait" and highest is None:
                highest = self._highest_id()  # read once per pass, only when some job waits
                block = dependency_block(self.queue, spec, highest)
            if block is not None and block[0] != "wait":
                self._cancel_for_dependency(name, spec, block[1], block[0])
                continue
            reservation = reserve(spec) if block is None else None
            if reservation is None:
                self.passed_over.append(spec)
                index += 1
                continue
            self._forget(name)
            token = new_claim_token()
            if self.queue.move(spec, State.PENDING, State.RUNNING, claim=token):
                return Claim(spec, reservation, token)
            release(reservation)
        return None

    def _highest_id(self) -> int | None:
        from expq.queue.ids import last_id  # lazily: filelock costs `expq status` 75 ms at start-up

        try:
            return last_id(self.queue.paths)
        except (OSError, ValueError, ExpqError):  # a damaged counter: unknown ids are then only waited on
            return None

    def _forget(self, name: str) -> None:
        self._specs.pop(name, None)
        if name in self._names:
            self._names.remove(name)

    def _spec(self, name: str) -> JobSpec | None:
        cached = self._specs.get(name)
        if cached is not None:
            return cached
        path = self.queue.paths.state_dir(State.PENDING) / name
        try:
            raw, info = read_queue_file(path)
        except FileNotFoundError:
            self._forget(name)
            return None
        except InputError as exc:
            self._reject(name, str(exc))
            return None
        reason = check_spec_owner(path, info)
        if reason is not None:
            self._reject(name, reason)
            return None
        try:
            spec = JobSpec.from_json(raw)
            check_file_name(name, spec, State.PENDING)
        except InputError as exc:
            self._reject(name, str(exc))
            return None
        self._specs[name] = spec
        return spec

    def _reject(self, name: str, reason: str) -> None:
        self.queue.reject(State.PENDING, name, reason)
        self._forget(name)

    def _cancel_for_dependency(self, name: str, spec: JobSpec, dep: int, why: str) -> None:
        self._forget(name)
        if self.queue.move(spec, State.PENDING, State.CANCELLED):
            what = "does not exist" if why == "unknown" else str(self.queue.state_of(dep))
            self.queue.write_outcome(spec, Result.without_run(spec.id, State.CANCELLED, f"dependency {dep} {what}",
                                                              0, time.time()))
