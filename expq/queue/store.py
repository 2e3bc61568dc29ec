"""The queue directory: creating it, enqueueing specs, finding jobs, and moving them between states.

A state is a directory and a transition is one ``os.rename`` of a complete file; the rename is the
commit point, so of several processes racing for the same move exactly one succeeds.
"""
from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from pathlib import Path

from expq._fs import atomic_write, sync_filesystem, write_file
from expq.errors import NotFound
from expq.queue.paths import QueuePaths, job_id_of, resolve_root
from expq.queue.security import DIR_MODE, check_private_dir
from expq.queue.spec import JobSpec
from expq.queue.states import State, check_transition

__all__ = ["JobQueue"]

log = logging.getLogger(__name__)


class JobQueue:
    """One expq root: its queue directories and the operations that change a job's state."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.paths = QueuePaths(resolve_root(root))

    @property
    def root(self) -> Path:
        return self.paths.root

    def exists(self) -> bool:
        return self.paths.state_dir(State.PENDING).is_dir()

    def create(self) -> JobQueue:
        """Make every directory, not writable by group or others whatever the umask says."""
        for directory in self.paths.all_dirs():
            try:
                directory.mkdir(parents=True, mode=DIR_MODE)
            except FileExistsError:
                continue  # made by a concurrent submitter, or by the user (then check_secure judges it)
            os.chmod(directory, DIR_MODE)
        return self

    def check_secure(self) -> None:
        """Raises InsecureQueue when another user could place or change what workers run."""
        for directory in (self.paths.queue, *(self.paths.state_dir(s) for s in State), self.paths.incoming):
            check_private_dir(directory)

    def require(self) -> JobQueue:
        """Raises NotFound when the root holds no queue yet."""
        if not self.exists():
            raise NotFound("queue", f"{self.root} (submit a job first, or pass --root)")
        return self

    # -- submitting -------------------------------------------------------------------------

    def enqueue(self, specs: Iterable[JobSpec]) -> list[int]:
        """Make ``specs`` visible in ``pending/``, durable once this returns.

        Each spec is written complete under ``incoming/`` and renamed into ``pending/``; one
        ``syncfs`` at the end replaces an fsync per file (the measured difference on a 10,000-job
        sweep is in the README).
        """
        incoming = os.fspath(self.paths.incoming)  # strings, not Paths: this loop runs 10,000 times
        pending = os.fspath(self.paths.state_dir(State.PENDING))
        ids = []
        for spec in specs:
            tmp = f"{incoming}/{spec.id:08d}.json"
            write_file(tmp, spec.to_json(), exclusive=True)
            os.rename(tmp, f"{pending}/{QueuePaths.file_name(State.PENDING, spec.id, spec.priority)}")
            ids.append(spec.id)
        sync_filesystem(self.paths.queue)
        return ids

    # -- looking up -------------------------------------------------------------------------

    def list_names(self, state: State) -> list[str]:
        """Queue file names in ``state``, sorted: for pending, that is the order jobs are claimed in."""
        names = [n for n in os.listdir(self.paths.state_dir(state)) if n.endswith(".json")]
        names.sort()
        return names

    def list_ids(self, state: State) -> list[int]:
        return sorted(job_id_of(n) for n in self.list_names(state))

    def counts(self) -> dict[State, int]:
        """Jobs per state, from the directory listings alone."""
        return {s: len(self.list_names(s)) for s in State}

    def locate(self, job_id: int) -> tuple[State, Path] | None:
        """Where a job is now; finished and running jobs cost one stat each, pending a listing."""
        for state in (State.RUNNING, State.DONE, State.FAILED, State.CANCELLED):
            path = self.paths.job_file(state, job_id)
            if path.exists():
                return state, path
        suffix = f"-{job_id:08d}.json"
        for name in os.listdir(self.paths.state_dir(State.PENDING)):
            if name.endswith(suffix):
                return State.PENDING, self.paths.state_dir(State.PENDING) / name
        return None

    def state_of(self, job_id: int) -> State | None:
        found = self.locate(job_id)
        return found[0] if found else None

    def get(self, job_id: int) -> tuple[State, JobSpec]:
        """The current state and spec of a job.

        Raises:
            NotFound: no job has this id.
        """
        for _ in range(5):  # the job may move between locating and reading it; look again
            found = self.locate(job_id)
            if found is None:
                break
            try:
                return found[0], JobSpec.from_json(found[1].read_bytes())
            except FileNotFoundError:
                continue
        raise NotFound("job", job_id)

    def read(self, state: State, name: str) -> JobSpec:
        """Raises FileNotFoundError when the job has moved on, InputError when malformed."""
        return JobSpec.from_json((self.paths.state_dir(state) / name).read_bytes())

    # -- transitions ------------------------------------------------------------------------

    def move(self, spec: JobSpec, source: State, target: State) -> bool:
        """Move a job between states; False when it was not in ``source`` (another process won).

        Raises:
            InvalidTransition: the state table does not allow ``source -> target``.
        """
        check_transition(spec.id, source, target)
        try:
            os.rename(self.paths.job_file(source, spec.id, spec.priority),
                      self.paths.job_file(target, spec.id, spec.priority))
        except FileNotFoundError:
            return False
        return True

    def reject(self, state: State, name: str, reason: str) -> None:
        """Move a malformed or untrusted spec aside with its reason, so workers go on without it."""
        target = self.paths.rejected / name
        try:
            os.rename(self.paths.state_dir(state) / name, target)
        except FileNotFoundError:
            return
        atomic_write(target.with_suffix(".reason"), reason + "\n", durable=False)

    def write_outcome(self, spec: JobSpec, record: dict[str, object]) -> None:
        """Write ``result.json`` of a job that ended without running (cancelled, dependency failed).

        The state change before it is the commit; this record only adds the reason, so a full disk
        is logged and does not undo or block the transition.
        """
        run = self.paths.run(spec.run_dir)
        try:
            run.dir.mkdir(parents=True, exist_ok=True)
            atomic_write(run.result, json.dumps(record, separators=(",", ":")), durable=False)
        except OSError as exc:
            log.error("job %d is %s, but its reason could not be recorded: %s", spec.id, record["state"], exc)

    def check_ids_exist(self, job_ids: Iterable[int]) -> None:
        """Raises NotFound for the first id that is not a job of this queue."""
        for job_id in job_ids:
            if self.locate(job_id) is None:
                raise NotFound("job", job_id)

