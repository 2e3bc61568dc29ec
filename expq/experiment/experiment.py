"""``Experiment``: the in-process API that saves, logs metrics, injects config and runs commands.

A process that opens ``Experiment(name)`` by hand gets a new run directory
``<root>/experiments/<name>/<timestamp>[-N]/`` (an exclusive mkdir loop, so concurrent processes
never share one). Inside a job started by ``expq worker`` (``EXPQ_RUN_DIR`` set) it binds to the
job's run directory instead and takes the job's config. ``exp.run(fn)`` makes a nested run under
``runs/``; saves and metrics go to the innermost active run of the calling context.
"""
from __future__ import annotations

import contextlib
import contextvars
import itertools
import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from expq._fs import check_name, slug
from expq.contract import resolve_root
from expq.errors import ExpqError, InputError
from expq.experiment import active, files, tree
from expq.experiment.capture import captured, is_captured
from expq.experiment.config import deep_merge, expand_dotted, load_config
from expq.experiment.config_reads import ReadLog, TrackedConfig
from expq.experiment.env import current_job, load_job_config
from expq.experiment.logger import QUIET
from expq.experiment.metrics import DEFAULT_INTERVAL, tensorboard_wanted
from expq.experiment.reading import load_metric
from expq.experiment.run import Run
from expq.experiment.savers import SaverRegistry
from expq.experiment.sources import DEFAULT_EXCLUDE, DEFAULT_INCLUDE, GitInfo, git_info, project_dir, snapshot_sources

__all__ = ["Experiment"]

log = logging.getLogger(__name__)
_git_cache: list[GitInfo] = []
_ids = itertools.count()


class _Closed:
    """Stands in for the run stack of a closed experiment, so a late call fails clearly."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __getitem__(self, index: int) -> Any:
        raise ExpqError(f"experiment {self.name!r} is closed")

    def append(self, run: Run) -> None:
        raise ExpqError(f"experiment {self.name!r} is closed")

    def __iter__(self) -> Iterator[Run]:
        return iter(())

    def __contains__(self, run: object) -> bool:
        return False


def _git() -> GitInfo:
    if not _git_cache:  # one look at git per process: nested runs share the answer
        _git_cache.append(git_info())
    return _git_cache[0]


class Experiment:
    """An experiment run: a directory with saved files, metrics, config, logs and nested runs."""

    def __init__(
        self,
        name: str | None = None,
        root: str | os.PathLike[str] | None = None,
        *,
        config: Mapping[str, Any] | str | os.PathLike[str] | None = None,
        capture_output: bool = True,
        sources: bool = True,
        include: str = DEFAULT_INCLUDE,
        exclude: str = DEFAULT_EXCLUDE,
        flush_interval: float = DEFAULT_INTERVAL,
        tensorboard: bool | None = None,
    ) -> None:
        job = current_job()
        self._job = job
        self._capture = capture_output
        self._flush_interval = flush_interval
        self._tensorboard = tensorboard_wanted(tensorboard)  # also <run>/tensorboard/ event files; $EXPQ_TENSORBOARD
        self._savers = SaverRegistry()
        self._commands: dict[str, Callable[..., Any]] = {}
        self._base: dict[str, Any] = {}
        self._job_config: dict[str, Any] = load_job_config(job) if job else {}
        self._reads = ReadLog()
        if job is not None:
            if name is not None and name != job.experiment:
                log.warning("experiment %r runs as queued job %s of experiment %r: using the job's run directory",
                            name, job.job_id, job.experiment)
            self.name = job.experiment
            path = job.run_dir
            path.mkdir(parents=True, exist_ok=True)
            self.root = job.root
        else:
            self.name = check_name("experiment", name if name is not None else _default_name())
            self.root = resolve_root(root)
            path = tree.make_unique_dir(self.root / tree.EXPERIMENTS / self.name, tree.timestamp_name())
        self.path = path.resolve()
        self.experiment_dir = self.path  # the old library's name for this experiment run's folder
        self.collection_dir = self.path.parent  # <root>/experiments/<name>: every run of this name
        self.root = self.root.resolve()
        if config is not None:
            self._base = load_config(config)
        self._current: contextvars.ContextVar[Run | None] = contextvars.ContextVar(f"expq_run_{next(_ids)}", default=None)
        git = _git()
        top = Run(self.name, self.path, self.path.name, None, self._experiment_config, git,
                  capture=capture_output and job is None, flush_interval=flush_interval,
                  job_id=job.job_id if job else None)
        if self._tensorboard:
            top.metrics.enable_tensorboard()
        self._stack: Any = [top]
        top.begin()
        if sources:
            copied = snapshot_sources(project_dir(git), self.path / tree.SOURCES, include, exclude,
                                      skip=(self.root, self.path))
            top.log.logger.info("source snapshot: %d files from %s", len(copied), project_dir(git), extra=QUIET)
        active.register(self)

    # -- runs -------------------------------------------------------------------------------
    @property
    def current_run(self) -> Run:
        """The innermost active run of the calling context (the experiment's own when none)."""
        return self._current.get() or self._stack[-1]

    @property
    def run_dir(self) -> Path:
        """Directory of the innermost active run: where ``save`` and ``log_scalar`` write now."""
        return self.current_run.path

    @property
    def job_id(self) -> int | None:
        """The queued job this experiment is bound to, or None when started by hand."""
        return self._job.job_id if self._job else None

    def command(self, fn: Callable[..., Any] | None = None, *, name: str | None = None,
                prefixes: Sequence[str] | None = None) -> Any:
        """Decorator: register ``fn`` as a command for ``run`` (and capture its config)."""
        def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
            return self.add_command(function, name=name, prefixes=prefixes)
        return decorate(fn) if fn is not None else decorate

    def add_command(self, fn: Callable[..., Any], name: str | None = None,
                    prefixes: Sequence[str] | None = None) -> Callable[..., Any]:
        """Register ``fn`` under ``name`` (default: its ``__name__``); return it captured."""
        wrapped = fn if is_captured(fn) and prefixes is None else self.capture(fn, prefixes=prefixes)
        self._commands[check_name("command", name or fn.__name__)] = wrapped
        return wrapped

    def run(self, command: Callable[..., Any] | str, /, **overrides: Any) -> Any:
        """Run a command in a new nested run whose config has ``overrides`` over the current one.

        The exception of a failing command is logged with its traceback, marks the run failed
        and is raised again. Returns what the command returns.

        Raises:
            InputError: an unknown command name.
        """
        if isinstance(command, str):
            if command not in self._commands:
                raise InputError(f"no command {command!r} in experiment {self.name!r}; known: {sorted(self._commands)}")
            fn, label = self._commands[command], command
        else:
            label = getattr(command, "__name__", "run")
            registered = [c for c in self._commands.values() if c is command or getattr(c, "__wrapped__", None) is command]
            fn = registered[0] if registered else command if is_captured(command) else self.capture(command)
        suffix = ",".join(f"{key}={value}" for key, value in overrides.items())
        with self.start_run(slug(f"{label}_{suffix}" if suffix else label), overrides, command=label) as run:
            result = fn()
            run.result = result
        return result

    @contextlib.contextmanager
    def start_run(self, name: str, config: Mapping[str, Any] | None = None, *,
                  command: str | None = None) -> Iterator[Run]:
        """Context manager for a nested run named ``name`` (``-1``, ``-2`` added on collision)."""
        parent = self.current_run
        path = tree.make_unique_dir(parent.path / tree.RUNS, check_name("run", name))
        label = f"{parent.label}/{path.name}" if parent.parent is not None else path.name
        capture = self._capture and threading.current_thread() is threading.main_thread()
        run = Run(self.name, path, label, parent, lambda: parent.config, _git(), command=command or name,
                  capture=capture, flush_interval=self._flush_interval, job_id=self.job_id)
        if self._tensorboard:
            run.metrics.enable_tensorboard()
        if config:
            run.layer = expand_dotted(config)
        run.begin()
        token = self._current.set(run)
        self._stack.append(run)
        try:
            yield run
        except BaseException as error:
            self._end_run(run, token, error)
            raise
        self._end_run(run, token, None)

    def _end_run(self, run: Run, token: contextvars.Token[Run | None], error: BaseException | None) -> None:
        self._current.reset(token)
        if run in self._stack:
            self._stack.remove(run)
        result, result_file = _storable_result(self, run, run.result)
        run.finish(error, result, result_file)

    # -- config -----------------------------------------------------------------------------
    def _experiment_config(self) -> dict[str, Any]:
        return deep_merge(self._base, self._job_config)

    @property
    def config(self) -> dict[str, Any]:
        """The config of the innermost active run (a copy: change it with ``add_config``); the keys
        read from it count as used (see ``expq.experiment.config_reads``)."""
        return TrackedConfig(self.current_run.config, self._reads)

    def add_config(self, source: Mapping[str, Any] | str | os.PathLike[str]) -> None:
        """Deep-merge a dict or a ``.yaml``/``.json`` file into the current run's config.

        Outside a nested run this is the experiment config; a queued job's own config stays on top.
        """
        update = load_config(source)
        run = self.current_run
        if run.parent is None:
            self._base = deep_merge(self._base, update)
            run.write_meta()
        else:
            run.add_config(update)

    def capture(self, fn: Callable[..., Any] | None = None, *, prefixes: Sequence[str] | None = None) -> Any:
        """Decorator: fill ``fn``'s parameters from the current config at each call (see expq.experiment.capture)."""
        def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
            return captured(function, lambda: self.current_run.config, prefixes, self._reads.mark)
        return decorate(fn) if fn is not None else decorate

    # -- saving -----------------------------------------------------------------------------
    def save(self, obj: Any, name: str, overwrite: bool = False) -> Path:
        """Save ``obj`` in the current run's ``files/`` with the saver its type asks for; return the file.

        Raises:
            InputError: an unsafe name or a type no saver takes.
        """
        return files.save_object(self._savers, self.current_run.path / tree.FILES, obj, name, overwrite)

    def save_pickle(self, obj: Any, name: str, overwrite: bool = False) -> Path:
        """The explicit fallback for objects no saver takes: pickle them to ``name.pkl``."""
        return files.save_pickled(self.current_run.path / tree.FILES, obj, name, overwrite)

    def add_saver(self, cls: type | str, fn: Callable[[Any, Path], None], ext: str,
                  loader: Callable[[Path], Any] | None = None) -> None:
        """Save objects of ``cls`` with ``fn(obj, path)`` as ``.ext``; ``loader(path)`` reads them back."""
        self._savers.add(cls, fn, ext, loader)

    def load(self, name: str) -> Any:
        """Read back an object saved in the current run under ``name``."""
        return files.load_object(self._savers, self.current_run.path / tree.FILES, name)

    # -- metrics ----------------------------------------------------------------------------
    def log_scalar(self, name: str, value: float, step: int | None = None) -> None:
        """Record ``value`` of metric ``name`` at ``step`` (default: one after the last step).

        Raises:
            InputError: a non-numeric value or a non-integer step.
        """
        (self._current.get() or self._stack[-1]).metrics.log_scalar(name, value, step)

    def log_scalars(self, values: Mapping[str, float], step: int | None = None) -> None:
        """Record several metrics at once, each with its own step counter unless ``step`` is given."""
        sink = (self._current.get() or self._stack[-1]).metrics
        for name, value in values.items():
            sink.log_scalar(name, value, step)

    def load_scalar(self, name: str) -> Any:
        """Points of metric ``name`` in the current run: a numpy array with fields step, value, time."""
        run = self.current_run
        run.metrics.flush()
        return load_metric(run.path / tree.METRICS, name)

    def flush(self) -> None:
        """Write buffered metrics of every active run now."""
        for run in list(self._stack):
            run.metrics.flush()

    # -- logging ----------------------------------------------------------------------------
    @property
    def logger(self) -> logging.Logger:
        """The current run's logger: it writes to that run's ``run.log``."""
        return self.current_run.log.logger

    def debug(self, msg: str, *args: Any) -> None:
        self.logger.debug(msg, *args, stacklevel=2)

    def info(self, msg: str, *args: Any) -> None:
        self.logger.info(msg, *args, stacklevel=2)

    def warning(self, msg: str, *args: Any) -> None:
        self.logger.warning(msg, *args, stacklevel=2)

    def error(self, msg: str, *args: Any) -> None:
        self.logger.error(msg, *args, stacklevel=2)

    # -- results ----------------------------------------------------------------------------
    def runs_table(self, maximize: Sequence[str] = ()) -> Any:
        """One row per run of this experiment (all processes and jobs): see ``expq.open(...).table``."""
        self.flush()
        from expq.experiment.reading import StoredExperiment

        return StoredExperiment(self.collection_dir).table(maximize=maximize)

    def plot(self, metrics: str | Sequence[str], output: str | os.PathLike[str] | None = None,
             runs: Sequence[str] | None = None) -> Path:
        """Draw ``metrics`` of this experiment's runs, one axis per metric; return the image written.

        The default output is ``plots/<metrics>.png`` among the current run's saved files.
        """
        self.flush()
        from expq.experiment.plot import plot_runs
        from expq.experiment.reading import StoredExperiment

        names = [metrics] if isinstance(metrics, str) else list(metrics)
        stored = StoredExperiment(self.collection_dir).all_runs(runs)
        if output is None:
            folder = self.current_run.path / tree.FILES / "plots"
            folder.mkdir(parents=True, exist_ok=True)
            output = folder / f"{slug('_'.join(names))}.png"
        return plot_runs(stored, names, Path(output), title=self.name)

    # -- life -------------------------------------------------------------------------------
    def close(self, error: BaseException | None = None) -> None:
        """End every open run (innermost first), flush everything and stop capture. Idempotent."""
        if isinstance(self._stack, _Closed):
            return
        stack, self._stack = self._stack, _Closed(self.name)
        active.unregister(self)
        if self._job is not None:
            try:
                self._reads.save(self.path)
            except OSError as exc:  # a full disk: the job only loses its unread-key warning
                log.warning("could not record which config keys were read: %s", exc)
        for run in reversed(stack):
            run.finish(error if run is stack[0] else None)

    def __enter__(self) -> Experiment:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close(error)

    def __repr__(self) -> str:
        return f"Experiment({self.name!r}, path={str(self.path)!r})"


def _default_name() -> str:
    main = getattr(sys.modules.get("__main__"), "__file__", None)
    return slug(Path(main).stem) if main else "default"


def _storable_result(experiment: Experiment, run: Run, result: Any) -> tuple[Any, str | None]:
    """A command's return value as JSON in run.json, else saved as a file named ``result``."""
    if result is None:
        return None, None
    try:
        json.dumps(result)
        return result, None
    except (TypeError, ValueError):
        pass
    try:
        path = files.save_object(experiment._savers, run.path / tree.FILES, result, "result")
    except InputError:
        return repr(result), None
    return None, path.name
