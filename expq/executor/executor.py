"""``expq.Executor``: queue Python function calls as ordinary jobs and get futures back.

A submit is the CLI's submit with a pickled call beside each job: everything is checked and pickled
first, ids are allocated once for the whole batch (``build_specs``), each call is written into its
job's run directory (owner-only), and only then does one ``enqueue`` make the jobs visible to
workers, durable when it returns. The job's command, ``python -m expq.executor module.qualname``,
runs with the submitting interpreter by default, so a node that mounts the same venv runs it as is.
"""
from __future__ import annotations

import concurrent.futures
import json
import os
import pickle
import shutil
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from expq._fs import check_name, slug
from expq.errors import InputError
from expq.executor.job import Job
from expq.executor.options import job_options
from expq.executor.payload import CALL_FILE, dump_call, make_run_dir, qualified_name, submitter_path, write_private
from expq.executor.watcher import Watcher, running_ids
from expq.launcher.submit import Plan, build_specs
from expq.queue.spec import JobSpec
from expq.queue.states import State
from expq.queue.store import JobQueue

__all__ = ["Executor"]

# What pickling a function or its arguments raises when it cannot (cloudpickle adds no class of its own).
_PICKLE_ERRORS = (pickle.PicklingError, TypeError, AttributeError, ValueError, RecursionError, ImportError)


class Executor:
    """Submits functions as queued jobs; any worker serving ``root`` runs them.

    ``gpus`` is the number of GPUs each job needs; ``python`` the interpreter jobs run with
    (default: this one); ``cwd`` their working directory (default: the current one, at submit).
    ``with Executor(...) as ex:`` waits for the jobs submitted in the block when it ends normally
    (not after an exception, nor with ``wait_on_exit=False``); the jobs stay queued either way.

    Raises:
        InputError: a bad option (nothing is queued).
    """

    def __init__(self, root: str | os.PathLike[str] | None = None, experiment: str = "default", gpus: int = 0,
                 gpu_mem: int | str | None = None, retries: int = 0, timeout: float | None = None,
                 priority: int = 0, env: Mapping[str, str] | None = None, python: str | None = None,
                 *, cwd: str | os.PathLike[str] | None = None, wait_on_exit: bool = True) -> None:
        self._options = job_options(experiment, gpus, gpu_mem, retries, timeout, priority, env, cwd)
        if python is not None and (not isinstance(python, str) or not python):
            raise InputError(f"invalid python={python!r}: expected the path of a Python interpreter")
        self.python = python or sys.executable
        self._queue = JobQueue(root)
        self._watcher = Watcher(self._queue)
        self._jobs: list[Job] = []
        self._wait_on_exit = wait_on_exit
        self._closed = False

    @property
    def root(self) -> Path:
        return self._queue.root

    @property
    def jobs(self) -> list[Job]:
        """Every job this executor submitted, in submission order."""
        return list(self._jobs)

    # -- submitting -------------------------------------------------------------------------

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Job:
        """Queue ``fn(*args, **kwargs)`` as one job and return its future.

        Raises:
            InputError: ``fn`` or an argument cannot be pickled (nothing is queued).
        """
        return self._submit(fn, [(args, kwargs)], [{}], [""])[0]

    def map(self, fn: Callable[..., Any], *iterables: Iterable[Any]) -> list[Job]:
        """Queue ``fn(*items)`` for each ``items`` of ``zip(*iterables)`` in one submit; the jobs in input order.

        Raises:
            InputError: no iterable, or an item cannot be pickled (nothing is queued).
        """
        if not iterables:
            raise InputError("map() needs at least one iterable of arguments")
        calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = [(items, {}) for items in zip(*iterables)]
        return self._submit(fn, calls, [{}] * len(calls), [""] * len(calls))

    def sweep(self, fn: Callable[..., Any], grid: Mapping[str, Iterable[Any]]) -> list[Job]:
        """Queue ``fn(**point)`` for each point of the grid's Cartesian product (first key slowest).

        Each point is also the job's config (``get_experiment().config``, ``capture``) and names its
        run as a CLI sweep would (``lr=0.1,seed=0``).

        Raises:
            InputError: a key that is not an identifier, no values, a value a config cannot hold
                (JSON types only), or a value that cannot be pickled (nothing is queued).
        """
        from expq.launcher.sweep import expand, run_name

        if not isinstance(grid, Mapping):
            raise InputError(f"sweep() needs a grid mapping each argument name to its values, not {type(grid).__name__}")
        sweeps = [(key, _grid_values(key, values)) for key, values in grid.items()]
        points = [values for _, values in expand({}, sweeps)]
        return self._submit(fn, [((), point) for point in points], points, [run_name(point) for point in points])

    def _submit(self, fn: Callable[..., Any], calls: Sequence[tuple[tuple[Any, ...], dict[str, Any]]],
                configs: Sequence[dict[str, Any]], names: Sequence[str]) -> list[Job]:
        if self._closed:
            raise RuntimeError("this executor is shut down: make a new one to submit more jobs")
        if not callable(fn):
            raise InputError(f"cannot submit {fn!r}: it is not callable")
        if not calls:
            return []
        what = qualified_name(fn)
        sys_path = submitter_path()
        blobs = []
        for number, (args, kwargs) in enumerate(calls):
            try:
                blobs.append(dump_call(fn, args, kwargs, sys_path))
            except _PICKLE_ERRORS as exc:
                which = f" (call {number + 1} of {len(calls)})" if len(calls) > 1 else ""
                raise InputError(f"cannot queue {what}{which}: the function or an argument cannot be pickled: "
                                 f"{type(exc).__name__}: {exc}") from exc
        fallback = check_name("run", slug(what.rpartition(".")[2]))
        command = [self.python, "-m", "expq.executor", what]
        plans = [Plan(check_name("run", name or fallback), command, config) for name, config in zip(names, configs)]
        specs = build_specs(self._queue.root, plans, self._options)
        self._write_calls([spec.run_dir for spec in specs], blobs)
        self._queue.enqueue(specs)
        return self._watch(specs)

    def _write_calls(self, run_dirs: Sequence[str], blobs: Sequence[bytes]) -> None:
        """Each call into its new run directory; on failure (disk full) none is left behind."""
        root = os.fspath(self._queue.root)  # strings, not Paths, in a loop that may run 10,000 times
        made: list[str] = []
        try:
            for directory in {os.path.dirname(run_dir) for run_dir in run_dirs}:
                os.makedirs(os.path.join(root, directory), exist_ok=True)
            for run_dir, blob in zip(run_dirs, blobs):
                path = f"{root}/{run_dir}"
                make_run_dir(path)
                made.append(path)
                write_private(f"{path}/{CALL_FILE}", blob)
        except OSError:
            for path in made:
                shutil.rmtree(path, ignore_errors=True)
            raise

    def _watch(self, specs: Sequence[JobSpec]) -> list[Job]:
        jobs = [Job.queued(self._queue, spec, self._watcher) for spec in specs]
        self._watcher.add(jobs)
        self._jobs.extend(jobs)
        return jobs

    # -- re-attaching and ending --------------------------------------------------------------

    def attach(self, job_ids: Iterable[int]) -> list[Job]:
        """Futures of jobs queued earlier, by any process (a sweep after a notebook restart), all
        watched by this executor's one thread and waited for by its ``with`` block.

        Raises:
            NotFound: an id that is not a job of this root (no future is made).
        """
        self._queue.require()
        return self._watch([self._queue.get(int(job_id))[1] for job_id in job_ids])

    def shutdown(self, wait: bool = True, *, cancel_pending: bool = False) -> None:
        """Submit nothing more; cancel this executor's pending jobs if asked; wait for all of them if asked."""
        self._closed = True
        if cancel_pending:
            self._cancel_pending()
        if wait:
            concurrent.futures.wait(self._jobs)

    def _cancel_pending(self) -> None:
        from expq.queue.control import cancel

        located = self._queue.locate_many(job.id for job in self._jobs)  # never a listing of pending/
        pending = {job for job, (state, _) in located.items() if state is State.PENDING}
        ids = [job.id for job in self._jobs if job.id in pending]
        if not ids:
            return
        try:
            cancel(self._queue, ids)  # one call: the queue finds them all at once
        except InputError:  # one was claimed and finished meanwhile: cancel the others one by one
            for job in self._jobs:
                if job.id in pending:
                    job.cancel()
        running = running_ids(self._queue)
        for job in self._jobs:
            job.poll(running)  # the cancelled ones resolve now, not at the watcher's next round

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        # After an exception (Ctrl-C included) waiting could take hours; the jobs stay queued.
        self.shutdown(wait=kind is None and self._wait_on_exit)

    def __repr__(self) -> str:
        return f"expq.Executor(root={str(self._queue.root)!r}, experiment={self._options.experiment!r})"


def _grid_values(key: object, values: Iterable[Any]) -> list[Any]:
    if not isinstance(key, str) or not key.isidentifier():
        raise InputError(f"invalid sweep key {key!r}: each key is a keyword argument of the function")
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise InputError(f"invalid sweep values for {key!r}: expected a list of values, got {values!r}")
    listed = list(values)
    if not listed:
        raise InputError(f"invalid sweep values for {key!r}: no values")
    for value in listed:
        try:
            json.dumps(value)
        except (TypeError, ValueError):
            raise InputError(f"invalid sweep value {key}={value!r}: a job's config holds only JSON types "
                             "(str, int, float, bool, None, lists and dicts of them)") from None
    return listed
