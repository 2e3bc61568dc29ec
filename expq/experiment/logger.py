"""A ``logging.Logger`` per run, writing to the run's ``run.log`` and, for people, to stderr.

Loggers of nested runs are children of their parent run's logger, so a nested run's messages
also reach the enclosing runs' logs; top-level run loggers pass records on to ``expq.runs``
and so to the application's logging. Run loggers are built directly, not through
``logging.getLogger``, which would keep every one of them for the life of the process (300
``exp.run`` calls, 300 loggers); they are freed with their run.

``exp.info/warning/error`` are meant for the person running the script, so they also go to
stderr at their level (INFO and above), unless the application configured logging itself
(a handler on the root logger), in which case its levels and handlers decide. The run's own
bookkeeping (start, end, source snapshot) is marked ``QUIET`` and stays out of stderr.
"""
from __future__ import annotations

import itertools
import logging
import sys
from pathlib import Path

__all__ = ["RunLogger", "FORMAT", "CONSOLE_FORMAT", "QUIET"]

FORMAT = "%(asctime)s %(levelname)-7s [%(run)s] %(message)s"
CONSOLE_FORMAT = "%(levelname)s [%(expq_where)s] %(message)s"
QUIET = {"expq_console": False}  # ``extra=`` for records that belong in run.log only
_PARENT = logging.getLogger("expq.runs")
_ids = itertools.count()


class _RunFilter(logging.Filter):
    """Adds ``%(run)s`` (for run.log) and ``%(expq_where)s`` (experiment/run, for stderr) to records."""

    def __init__(self, label: str, where: str) -> None:
        super().__init__()
        self.label = label
        self.where = where

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "run"):
            record.run = self.label
            record.expq_where = self.where
        return True


class _Outward(logging.Handler):
    """Where a top-level run's records go beyond run.log: the application's logging, else stderr.

    Decided at each record, since an application may configure logging after opening the
    experiment. Configured (a handler on ``expq.runs`` or above): forwarded to ``expq.runs``
    when that logger is enabled for the level, so the application's levels hold. Not configured:
    INFO and above, except ``QUIET`` records, are written to whatever ``sys.stderr`` is then.
    """

    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter(CONSOLE_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        if _PARENT.hasHandlers():
            if _PARENT.isEnabledFor(record.levelno):
                _PARENT.handle(record)
        elif record.levelno >= logging.INFO and getattr(record, "expq_console", True):
            try:
                sys.stderr.write(self.format(record) + "\n")
                sys.stderr.flush()
            except (OSError, ValueError):  # no usable stderr (closed, detached): run.log still has it
                self.handleError(record)


class RunLogger:
    """Owns a run's logger and its handlers; ``close`` detaches them and lets the logger go."""

    def __init__(self, log_path: Path, label: str, parent: RunLogger | None = None, experiment: str = "") -> None:
        safe = label.replace(".", "_").replace("/", ".")
        if parent is None:
            name = f"{_PARENT.name}.{next(_ids)}"
        else:
            name = f"{parent.logger.name}.{safe.rsplit('.', 1)[-1]}_{next(_ids)}"
        self.logger: logging.Logger = logging.Logger(name, logging.DEBUG)  # unregistered: freed with the run
        self.logger.parent = parent.logger if parent is not None else _PARENT
        where = experiment if parent is None else f"{experiment}/{label}"
        self.logger.addFilter(_RunFilter(label, where if experiment else label))
        self._handlers: list[logging.Handler] = [logging.FileHandler(log_path, encoding="utf-8", delay=False)]
        self._handlers[0].setFormatter(logging.Formatter(FORMAT))
        if parent is None:  # nested runs propagate to this one; _Outward replaces propagation
            self.logger.propagate = False
            self._handlers.append(_Outward())
        for handler in self._handlers:
            self.logger.addHandler(handler)

    def close(self) -> None:
        """Flush and detach the handlers (idempotent); a late record still reaches the enclosing runs."""
        for handler in self._handlers:
            self.logger.removeHandler(handler)
            handler.close()
        self._handlers = []
