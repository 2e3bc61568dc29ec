"""Where a worker's log lines go: stderr, plus ``queue/workers/<worker id>.log`` when stderr is a
terminal, so that a worker whose terminal goes away (an ssh session that dropped: SIGHUP, which the
worker ignores) goes on logging to its file only. Writing to a hung-up terminal fails with EIO; the
terminal handler then removes itself instead of reporting the failure on every line.

A worker whose stderr is already a file (``--detach``, a SLURM task, a redirection) logs there only.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

from expq._fs import MODES

__all__ = ["FORMAT", "TerminalHandler", "setup_logging"]

FORMAT = "%(asctime)s expq-worker[%(process)d] %(levelname)s %(message)s"


class TerminalHandler(logging.StreamHandler):
    """stderr until writing to it fails (the terminal is gone); then nothing."""

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 - logging's name
        if isinstance(sys.exc_info()[1], OSError):
            logging.getLogger().removeHandler(self)
            return
        super().handleError(record)


def setup_logging(level: str | int, log_file: Path | None) -> None:
    """Log at ``level`` to stderr and, if given, to ``log_file`` (appended).

    The line names no source file, thread or process name, so the record does not look for them
    (the logging HOWTO's "optimization" settings): a line per finished job costs a third less."""
    logging._srcfile = None  # documented by the HOWTO: skips the walk up the stack for the caller
    logging.logThreads = logging.logMultiprocessing = False
    formatter = logging.Formatter(FORMAT)
    root = logging.getLogger()
    root.setLevel(level)
    terminal = TerminalHandler(sys.stderr)
    terminal.setFormatter(formatter)
    root.addHandler(terminal)
    if log_file is not None:
        try:  # created with the root's modes (owner-only unless the root is shared), whatever the umask
            fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, MODES.file)
        except OSError as exc:  # no log file: the terminal still gets everything
            logging.getLogger(__name__).warning("cannot open the worker log %s: %s", log_file, exc)
            return
        handler = logging.StreamHandler(open(fd, "a", encoding="utf-8", buffering=1))
        handler.setFormatter(formatter)
        root.addHandler(handler)
