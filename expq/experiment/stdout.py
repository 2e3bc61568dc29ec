"""File-descriptor level capture of stdout and stderr, still shown on the terminal.

``fd 1`` (or 2) is pointed at a pipe; a thread copies everything from the pipe to what the fd
pointed to before (the terminal, or the enclosing capture) and to the log file. Because it works
on the descriptor, output of C extensions and of child processes is captured as well. Stopping
restores the previous descriptor, which closes our pipe's write end, and waits until the thread
has drained the pipe to its end: output written before ``stop`` is never lost or misattributed.
Nested captures stack (a run inside an experiment); use them from one thread, in stack order.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
import threading
from pathlib import Path

__all__ = ["FdTee", "OutputCapture"]

log = logging.getLogger(__name__)

_CHUNK = 1 << 16
_JOIN_TIMEOUT = 5.0
_libc_name = ctypes.util.find_library("c")


def _flush_streams(fd: int) -> None:
    """Flush Python's and C's buffers for ``fd`` so buffered output lands on the right side of a switch."""
    stream = sys.stdout if fd == 1 else sys.stderr if fd == 2 else None
    if stream is not None:
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken stream has nothing left to flush
            pass
    if _libc_name:
        try:
            ctypes.CDLL(_libc_name).fflush(None)
        except (OSError, AttributeError):
            pass


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class FdTee:
    """One capture level for one file descriptor: a pipe on ``fd`` and a thread copying it on."""

    def __init__(self, fd: int, log_path: Path) -> None:
        _flush_streams(fd)
        self.fd = fd
        self.log_path = log_path
        self._previous = os.dup(fd)
        self._log = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        read_end, write_end = os.pipe()
        self._thread = threading.Thread(target=self._pump, args=(read_end,), name=f"expq-tee-{fd}", daemon=True)
        self._thread.start()
        os.dup2(write_end, fd)
        os.close(write_end)
        self._stopped = False

    def _pump(self, read_end: int) -> None:
        targets = [self._previous, self._log]
        try:
            while True:
                data = os.read(read_end, _CHUNK)
                if not data:
                    return
                for target in list(targets):
                    try:
                        _write_all(target, data)
                    except OSError as error:  # a closed terminal must not stop the log, nor the reverse
                        targets.remove(target)
                        log.warning("output capture stopped writing to fd %d: %s", target, error)
        finally:
            os.close(read_end)

    def stop(self) -> None:
        """Restore the descriptor and wait until everything written before is copied."""
        if self._stopped:
            return
        self._stopped = True
        _flush_streams(self.fd)
        os.dup2(self._previous, self.fd)
        self._thread.join(_JOIN_TIMEOUT)
        if self._thread.is_alive():
            # A child process still holds the pipe: keep copying its output, keep the fds open.
            log.warning("a child process still writes to captured fd %d; its output keeps going to %s",
                        self.fd, self.log_path)
            return
        os.close(self._previous)
        os.close(self._log)


class OutputCapture:
    """Capture of both stdout and stderr into two files of one run directory."""

    def __init__(self, stdout_path: Path, stderr_path: Path) -> None:
        self._tees: list[FdTee] = []
        try:
            self._tees.append(FdTee(1, stdout_path))
            self._tees.append(FdTee(2, stderr_path))
        except OSError as error:  # no fd 1/2 (a daemon, pythonw): run without capture, say so
            self.stop()
            log.warning("output capture disabled: %s", error)

    def stop(self) -> None:
        """Stop in reverse order of start (stderr first), restoring the terminal."""
        while self._tees:
            self._tees.pop().stop()
