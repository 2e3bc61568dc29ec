"""A ``logging.Logger`` per run, writing to the run's ``run.log``.

Loggers of nested runs are children of their parent run's logger, so a nested run's messages
also reach the enclosing runs' logs. They propagate to the ``expq.runs`` logger and on to the
root logger: the application, not the library, decides whether they reach the terminal.
"""
from __future__ import annotations

import itertools
import logging
from pathlib import Path

__all__ = ["RunLogger", "FORMAT"]

FORMAT = "%(asctime)s %(levelname)-7s [%(run)s] %(message)s"
_ids = itertools.count()


class _RunFilter(logging.Filter):
    """Adds ``%(run)s`` to records, so the log says which run wrote each line."""

    def __init__(self, label: str) -> None:
        super().__init__()
        self.label = label

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "run"):
            record.run = self.label
        return True


class RunLogger:
    """Owns a run's logger and its file handler; ``close`` detaches the handler."""

    def __init__(self, log_path: Path, label: str, parent: RunLogger | None = None) -> None:
        safe = label.replace(".", "_").replace("/", ".")
        if parent is None:
            name = f"expq.runs.{next(_ids)}"
        else:
            name = f"{parent.logger.name}.{safe.rsplit('.', 1)[-1]}_{next(_ids)}"
        self.logger: logging.Logger = logging.getLogger(name)
        self.logger.setLevel(logging.DEBUG)
        self.logger.addFilter(_RunFilter(label))
        self._handler = logging.FileHandler(log_path, encoding="utf-8", delay=False)
        self._handler.setFormatter(logging.Formatter(FORMAT))
        self.logger.addHandler(self._handler)

    def close(self) -> None:
        """Flush and detach the file handler; the logger object itself stays (logging keeps it)."""
        self.logger.removeHandler(self._handler)
        self._handler.close()
        for flt in list(self.logger.filters):
            self.logger.removeFilter(flt)
