"""The experiments open in this process: what ``get_experiment()`` returns, and closing at exit.

This is the one piece of process-wide state of the experiment API. It exists because the old
library's promise, "get the active experiment from any module", needs it; it is a plain list
guarded by a lock, emptied at exit by ``close`` with the outcome of the program (an uncaught
exception, seen by a chained ``sys.excepthook``, marks the open experiments failed).
"""
from __future__ import annotations

import atexit
import sys
import threading
from types import TracebackType
from typing import TYPE_CHECKING

from expq.errors import ExpqError
from expq.experiment.env import current_job

if TYPE_CHECKING:
    from expq.experiment.experiment import Experiment

__all__ = ["register", "unregister", "get_experiment", "open_experiments"]

_open: list[Experiment] = []
_lock = threading.RLock()
_uncaught: list[BaseException] = []
_hooks_installed = False


def register(experiment: Experiment) -> None:
    """Make ``experiment`` the active one; install the exit hooks on first use."""
    global _hooks_installed
    with _lock:
        _open.append(experiment)
        if not _hooks_installed:
            _hooks_installed = True
            atexit.register(_close_all)
            previous = sys.excepthook

            def _excepthook(kind: type[BaseException], value: BaseException, tb: TracebackType | None) -> None:
                _uncaught.append(value)
                previous(kind, value, tb)

            sys.excepthook = _excepthook


def unregister(experiment: Experiment) -> None:
    with _lock:
        if experiment in _open:
            _open.remove(experiment)


def open_experiments() -> list[Experiment]:
    """The open experiments, oldest first."""
    with _lock:
        return list(_open)


def get_experiment(name: str | None = None) -> Experiment:
    """The most recently opened experiment still open (named ``name`` if given).

    Inside a job started by ``expq worker`` with none open yet, opens one bound to the job's run.

    Raises:
        ExpqError: no experiment is open and this process is not a queued job.
    """
    with _lock:
        for experiment in reversed(_open):
            if name is None or experiment.name == name:
                return experiment
        if current_job() is not None:
            from expq.experiment.experiment import Experiment

            return Experiment(name)
    wanted = f"named {name!r} " if name else ""
    raise ExpqError(f"no experiment {wanted}is open in this process: create one with expq.Experiment(name)")


def _close_all() -> None:
    error = _uncaught[-1] if _uncaught else None
    for experiment in reversed(open_experiments()):
        experiment.close(error)
