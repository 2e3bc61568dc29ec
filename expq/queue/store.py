"""The queue directory: creating it, enqueueing specs, finding jobs, and moving them between states.

A state is a directory and a transition is one ``os.rename`` of a complete file; the rename is the
commit point, so of several processes racing for the same move exactly one succeeds.
"""
from __future__ import annotations

import contextlib
import errno
import logging
import os
import stat
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from expq._fs import (
    NOFOLLOW,
    adopt_root,
    atomic_write,
    ensure_dir,
    make_private_dir,
    pid_exists,
    read_at_most,
    sync_filesystem,
    write_file,
)
from expq.errors import InputError, InsecureQueue, NotFound
from expq.queue.paths import AFTER, FORMAT_VERSION, QueuePaths, claim_of, job_id_of, pending_bucket, resolve_root
from expq.queue.result import Result, write_result
from expq.queue.security import check_private_dir, private_problem
from expq.queue.spec import JobSpec
from expq.queue.states import State, check_transition
from expq.queue.workers import this_host

__all__ = ["JobQueue", "read_spec", "read_queue_file", "check_file_name", "signal_change", "MAX_SPEC_BYTES"]

log = logging.getLogger(__name__)


class JobQueue:
    """One expq root: its queue directories and the operations that change a job's state."""

    def __init__(self, root: str | os.PathLike[str] | None = None) -> None:
        self.paths = QueuePaths(resolve_root(root))
        adopt_root(self.paths.root)  # a root shared with a group: this process writes group modes

    @property
    def root(self) -> Path:
        return self.paths.root

    def exists(self) -> bool:
        return self.paths.state_dir(State.PENDING).is_dir()

    def create(self) -> JobQueue:
        """Make every directory, not writable by group or others whatever the umask says, and bring
        a root of an older format to this one (see ``upgrade``)."""
        for directory in self.paths.all_dirs():
            if not directory.is_dir():
                ensure_dir(directory)  # made concurrently, or by the user: then check_secure judges it
        self.upgrade()
        if not self.paths.changed.exists():  # workers watch it: it exists from the start
            signal_change(self.paths)
        return self

    def upgrade(self) -> None:
        """Migrate a format-1 root in place (each pending spec renamed into its bucket: one rename
        each, so a concurrent old worker's claim and this migration never both take a job), then
        record the format; a root of a newer format is refused.

        Raises:
            NewerFormat: the root was written by a newer expq.
        """
        from expq.queue.layout import check_format, migrate_flat_pending

        if check_format(self.paths):
            return
        ensure_dir(self.paths.dependents)
        migrate_flat_pending(self)
        atomic_write(self.paths.format_file, f"{FORMAT_VERSION}\n", durable=False)

    def check_secure(self) -> None:
        """Raises InsecureQueue when another user could place or change what workers run, or a folder
        of the root is not a folder: the root, every queue folder, ``experiments/``, the id counter."""
        for directory in (self.root, *self.paths.all_dirs()):
            check_private_dir(directory)
        for control in (self.paths.id_counter, self.paths.id_lock):
            problem = private_problem(control, directory=False)
            if problem is not None:
                raise InsecureQueue(control, problem)

    def require(self) -> JobQueue:
        """Raises NotFound when the root holds no queue yet."""
        if not self.exists():
            raise NotFound("queue", f"{self.root} (submit a job first, or pass --root)")
        self.upgrade()
        return self

    # -- submitting -------------------------------------------------------------------------

    def enqueue(self, specs: Iterable[JobSpec]) -> list[int]:
        """Make ``specs`` visible in ``pending/``, all or none, durable once this returns.

        Every spec is first written complete into a folder of its own under ``incoming/``; only when
        all are written are they renamed into ``pending/`` (a rename that fails, e.g. on a full disk,
        puts back the ones already moved). One ``syncfs`` at the end replaces an fsync per file (the
        measured difference on a 10,000-job sweep is in docs/). What a crashed submit left in
        ``incoming/`` is removed by the next one.
        """
        from expq.queue.dependents import index_dependents, promote_dependents, unfinished

        specs = list(specs)
        self._remove_abandoned_batches()
        batch = os.fspath(self.paths.incoming / _batch_name())
        ensure_dir(Path(batch))
        waiting = unfinished(self.paths, specs)  # jobs with a dependency not yet ended wait in after/
        targets = [self.paths.pending_file(spec, spec.id in waiting) for spec in specs]
        for folder in {target.parent for target in targets}:
            ensure_dir(folder)
        # strings, not Paths: these loops run 10,000 times
        staged = [(f"{batch}/{spec.id:08d}.json", os.fspath(target)) for spec, target in zip(specs, targets)]
        moved = 0
        try:
            for spec, (tmp, _) in zip(specs, staged):
                write_file(tmp, spec.to_json(), exclusive=True)
            index_dependents(self.paths, [spec for spec in specs if spec.id in waiting])
            for tmp, target in staged:
                os.rename(tmp, target)
                moved += 1
        except OSError:
            for tmp, target in staged[:moved]:  # nothing of this submit may stay visible
                os.rename(target, tmp)
            _remove_tree(batch)
            raise
        os.rmdir(batch)
        sync_filesystem(self.paths.queue)
        signal_change(self.paths)
        for dep in {dep for spec in specs if spec.id in waiting for dep in spec.after}:
            promote_dependents(self, dep)  # a dependency that ended while this submit ran
        return [spec.id for spec in specs]

    def _remove_abandoned_batches(self) -> None:
        """Folders in ``incoming/`` whose submit died (same host: its pid is gone; any host: a day old)."""
        try:
            entries = list(os.scandir(self.paths.incoming))
        except FileNotFoundError:
            return
        host, now = this_host(), time.time()
        for entry in entries:
            owner_host, _, pid = entry.name.rpartition("-")[0].rpartition("-")
            try:
                old = now - entry.stat(follow_symlinks=False).st_mtime > ABANDONED_AFTER
            except FileNotFoundError:
                continue
            if old or (owner_host == host and pid.isdigit() and not pid_exists(int(pid))):
                _remove_tree(entry.path)

    # -- looking up -------------------------------------------------------------------------

    def list_names(self, state: State) -> list[str]:
        """Queue file names in ``state``, sorted: for pending (``<bucket>/<priority>/<id>.json``,
        relative to ``pending/``), that is the order jobs are claimed in."""
        if state is State.PENDING:
            return self.pending_names()
        names = [n for n in os.listdir(self.paths.state_dir(state)) if n.endswith(".json")]
        names.sort()
        return names

    def pending_names(self, buckets: Callable[[str], bool] | None = None) -> list[str]:
        """Pending names in schedule order (priority, then id), of every bucket or of those
        ``buckets`` accepts: a worker never lists jobs it cannot run."""
        keyed = []
        for folder, prefix in self.pending_folders(buckets):
            try:
                names = os.listdir(folder)
            except (FileNotFoundError, NotADirectoryError):
                continue
            priority = prefix.split("/")[1]
            keyed += [(priority, name, f"{prefix}{name}") for name in names if name.endswith(".json")]
        keyed.sort()
        return [name for _, _, name in keyed]

    def pending_folders(self, buckets: Callable[[str], bool] | None = None) -> list[tuple[str, str]]:
        """Each ``pending/<bucket>/<priority>`` folder (of the accepted buckets) and its name prefix."""
        top = os.fspath(self.paths.state_dir(State.PENDING))
        folders = []
        for bucket in os.listdir(top):
            if bucket.endswith(".json") or (buckets is not None and not buckets(bucket)):
                continue
            try:
                priorities = os.listdir(f"{top}/{bucket}")
            except (FileNotFoundError, NotADirectoryError):  # a format-1 file, migrated by upgrade()
                continue
            folders += [(f"{top}/{bucket}/{p}", f"{bucket}/{p}/") for p in priorities]
        return folders
    def list_ids(self, state: State) -> list[int]:
        return sorted(_ids_of(self.list_names(state)))

    def counts(self) -> dict[State, int]:
        """Jobs per state, from the directory listings alone."""
        return {s: len(self.list_names(s)) for s in State}

    def locate(self, job_id: int) -> tuple[State, Path] | None:
        """Where a job is now; finished jobs cost one stat each, running and pending a listing."""
        return self.locate_many([job_id]).get(job_id)

    def locate_many(self, job_ids: Iterable[int]) -> dict[int, tuple[State, Path]]:
        """Where each of these jobs is now: a stat per finished state, one listing of running (at most
        the workers' slots), a stat per pending bucket and priority in use; pending is never listed."""
        wanted = set(job_ids)
        found: dict[int, tuple[State, Path]] = {}
        # In the order jobs move (pending, running, finished): a job moving on meanwhile is found later.
        folders = self.pending_folders()
        for job_id in wanted:  # a stat per bucket and priority in use: no listing
            for folder, _ in folders:
                path = Path(f"{folder}/{job_id:08d}.json")
                if path.exists():
                    found[job_id] = State.PENDING, path
                    break
        if wanted - found.keys():
            directory = self.paths.state_dir(State.RUNNING)
            for name in os.listdir(directory):
                try:
                    job_id = job_id_of(name)
                except ValueError:
                    continue
                if job_id in wanted and job_id not in found:
                    found[job_id] = State.RUNNING, directory / name
        for state in (State.DONE, State.FAILED, State.CANCELLED):
            for job_id in wanted - found.keys():
                path = self.paths.job_file(state, job_id)
                if path.exists():
                    found[job_id] = state, path
        return found

    def state_of(self, job_id: int) -> State | None:
        found = self.locate(job_id)
        return found[0] if found else None

    def get(self, job_id: int) -> tuple[State, JobSpec]:
        """The current state and spec of a job.

        Raises:
            NotFound: no job has this id.
            InputError: the job's file is not a valid spec (named: a file put there by hand, or damaged).
        """
        for _ in range(5):  # the job may move between locating and reading it; look again
            found = self.locate(job_id)
            if found is None:
                break
            try:
                return found[0], read_spec(found[1])
            except FileNotFoundError:
                continue
            except InputError as exc:
                raise InputError(f"job {job_id}: {found[1]} is not a job file expq can read ({exc})") from None
        raise NotFound("job", job_id)

    def read(self, state: State, name: str) -> JobSpec:
        """Raises FileNotFoundError when the job has moved on, InputError when malformed or unsafe."""
        return _read_named(f"{self.paths.state_dir(state)}/{name}", state, name)

    # -- transitions ------------------------------------------------------------------------

    def move(self, spec: JobSpec, source: State, target: State, claim: str = "", cascade: bool = True) -> bool:
        """Move a job between states; False when it was not in ``source`` (another process won).

        ``claim`` names the claim a running job is under: moving it into running gives it that
        token, moving it out of running only moves that claim's file.

        Raises:
            InvalidTransition: the state table does not allow ``source -> target``.
        """
        check_transition(spec.id, source, target)
        destination = (self.paths.pending_file(spec) if target is State.PENDING
                       else self.paths.job_file(target, spec.id, spec.priority, claim))
        if target is State.PENDING:
            ensure_dir(destination.parent)
        if source is State.PENDING:  # runnable in its bucket, else waiting for dependencies in after/
            moved = (_rename(self.paths.pending_file(spec), destination)
                     or _rename(self.paths.pending_file(spec, waiting=True), destination))
        else:
            moved = _rename(self.paths.job_file(source, spec.id, spec.priority, claim), destination)
        if moved:
            self._moved(spec, target, cascade)
        return moved

    def place_pending(self, source: str | os.PathLike[str], spec: JobSpec, waiting: bool) -> bool:
        """Rename a pending spec from ``source`` into its bucket, or into ``after/`` while it waits for
        dependencies (its index entries written first); False when it moved on meanwhile. A job made
        claimable moves the change signal."""
        if waiting:
            from expq.queue.dependents import index_dependents

            index_dependents(self.paths, [spec])
        target = self.paths.pending_file(spec, waiting)
        ensure_dir(target.parent)
        try:
            os.rename(source, target)
        except FileNotFoundError:
            return False
        if not waiting:
            signal_change(self.paths)
        return True

    def _moved(self, spec: JobSpec, target: State, cascade: bool) -> None:
        """What a transition sets off: workers learn of a job they can claim; a job that ended lets
        the jobs waiting for it go on (one stat when none does; ``cascade=False`` for the promoter's
        own moves, which keeps its worklist)."""
        if target is State.PENDING:
            signal_change(self.paths)
        elif cascade and target in (State.DONE, State.FAILED, State.CANCELLED) and self.paths.dependents_of(spec.id).exists():
            from expq.queue.dependents import promote_dependents

            promote_dependents(self, spec.id)

    def reject(self, state: State, name: str, reason: str) -> None:
        """Move a malformed or untrusted spec aside with its reason, so workers go on without it."""
        target = self.paths.rejected / name.rpartition("/")[2]
        try:
            os.rename(self.paths.state_dir(state) / name, target)
        except FileNotFoundError:
            return
        except OSError:  # e.g. a directory named like a spec where rejected/ holds one already
            target = self.paths.rejected / f"{name.rpartition('/')[2]}.{os.urandom(4).hex()}"
            os.rename(self.paths.state_dir(state) / name, target)
        reason_file = target.with_suffix(".reason") if target.suffix == ".json" else target.with_name(target.name + ".reason")
        atomic_write(reason_file, reason + "\n", durable=False)

    def write_outcome(self, spec: JobSpec, record: Result) -> None:
        """Write ``result.json`` of a job that ended without running (cancelled, dependency failed).

        The state change before it is the commit; this record only adds the reason, so a full disk
        is logged and does not undo or block the transition.
        """
        run = self.paths.run(spec.run_dir)
        try:
            ensure_dir(run.dir.parent)
            make_private_dir(run.dir)
            write_result(run.result, record)
        except (OSError, InputError) as exc:
            log.error("job %d is %s, but its reason could not be recorded: %s", spec.id, record.state.value, exc)

    def check_ids_exist(self, job_ids: Iterable[int]) -> None:
        """Raises NotFound for the first id that is not a job of this queue."""
        job_ids = list(job_ids)
        found = self.locate_many(job_ids)
        for job_id in job_ids:
            if job_id not in found:
                raise NotFound("job", job_id)


# -- reading queue files, which are input: anything may have been put there ---------------------

MAX_SPEC_BYTES = 16 << 20
ABANDONED_AFTER = 24 * 3600.0  # seconds after which any submit's leftovers in incoming/ are removed


def _rename(source: Path, target: Path) -> bool:
    """False when ``source`` is not there (another process moved the job first)."""
    try:
        os.rename(source, target)
    except FileNotFoundError:
        return False
    return True


def read_queue_file(path: str | os.PathLike[str], limit: int = MAX_SPEC_BYTES) -> tuple[bytes, os.stat_result]:
    """The bytes and stat of a regular file, never following a symlink, never blocking on a FIFO,
    never reading more than ``limit`` bytes.

    Raises:
        FileNotFoundError: it is gone (moved on). InputError: anything but a small regular file.
    """
    try:
        fd = os.open(path, os.O_RDONLY | NOFOLLOW)
    except FileNotFoundError:
        raise
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError(f"{os.path.basename(path)} is a symbolic link, not a spec file") from None
        raise InputError(f"{os.path.basename(path)} cannot be opened: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"{os.path.basename(path)} is not a regular file")
        if info.st_size > limit:
            raise InputError(f"{os.path.basename(path)} is larger than {limit} bytes")
        raw = read_at_most(fd, limit, info.st_size, regular=True)
        if len(raw) > limit:
            raise InputError(f"{os.path.basename(path)} is larger than {limit} bytes")
        return raw, info
    finally:
        os.close(fd)


def read_spec(path: Path) -> JobSpec:
    """A spec file, checked as input: regular and small, valid, and consistent with its own name.

    Raises:
        FileNotFoundError: it moved on. InputError: why it must not be run.
    """
    return _read_named(path, *_state_and_name(path))


def _read_named(path: str | os.PathLike[str], state: State | None, name: str) -> JobSpec:
    raw, _ = read_queue_file(path)
    spec = JobSpec.from_json(raw)
    check_file_name(name, spec, state)
    return spec


def _state_and_name(path: Path) -> tuple[State | None, str]:
    """The state a queue file is in and its name there (rejected/, incoming/: None, the base name)."""
    if len(path.parts) > 3 and path.parts[-4] == State.PENDING.value:
        return State.PENDING, "/".join(path.parts[-3:])
    try:
        return State(path.parent.name), path.name
    except ValueError:
        return None, path.name


def check_file_name(name: str, spec: JobSpec, state: State | None) -> None:
    """A spec's id (and, pending, its priority) must be the ones its file name claims.

    Raises:
        InputError: naming both.
    """
    try:
        named = job_id_of(name)
    except ValueError:
        raise InputError(f"{name} is not a queue file name") from None
    if named != spec.id:
        raise InputError(f"{name} holds the spec of job {spec.id}, not of job {named}")
    if state is State.PENDING:
        expected = {QueuePaths.file_name(state, spec.id, spec.priority, bucket=b) for b in (pending_bucket(spec), AFTER)}
    else:
        expected = set() if state is None else {QueuePaths.file_name(state, spec.id, spec.priority, claim_of(name))}
    if state is not None and name not in expected:
        raise InputError(f"{name} does not match its spec (job {spec.id}, priority {spec.priority}, "
                         f"{spec.gpus} GPU(s))")


def signal_change(paths: QueuePaths) -> None:
    """Move the change signal: an exact timestamp from the fine clock, not the filesystem's coarse
    one, so two changes within one tick still read as two."""
    now = time.time_ns()
    try:
        os.utime(paths.changed, ns=(now, now))
    except FileNotFoundError:
        write_file(paths.changed, b"")


def _ids_of(names: Iterable[str]) -> list[int]:
    ids = []
    for name in names:
        try:
            ids.append(job_id_of(name))
        except ValueError:
            continue
    return ids


def _batch_name() -> str:
    return f"{this_host()}-{os.getpid()}-{os.urandom(4).hex()}"


def _remove_tree(path: str) -> None:
    """Remove a leftover incoming batch (a folder of spec files, or a stray file)."""
    import shutil

    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)

