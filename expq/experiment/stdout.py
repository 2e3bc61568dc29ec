"""File-descriptor level capture of stdout and stderr, still shown on the terminal.

``fd 1`` (or 2) is pointed at a pipe; a thread copies everything from the pipe to what the fd
pointed to before (the terminal, or the enclosing capture) and to the log file. Because it works
on the descriptor, output of C extensions and of child processes is captured as well. Stopping
restores the previous descriptor, which closes our pipe's write end, and waits until the thread
has drained the pipe to its end: output written before ``stop`` is never lost or misattributed.

Captures of one descriptor nest (a run inside an experiment, or two experiments open at once):
output goes to the terminal and to the log of every open capture. Each level copies into the
level below, so levels must unwind top first. Since the user may close them in any order
(``a = Experiment("a"); b = Experiment("b"); a.close()``), the captures of each descriptor are
kept in one stack per process (the descriptor itself is process-wide state): stopping a level
unwinds every level above it, stops it, and starts the upper levels again on the same log files.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os
import sys
import threading
from pathlib import Path

__all__ = ["FdCapture", "FdTee", "OutputCapture"]

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
    """One capture level for one file descriptor: a pipe on ``fd`` and a thread copying it on.

    It copies into whatever ``fd`` pointed to when it started and into its own duplicate of
    ``log_fd``; stopping is only correct for the top level of ``fd`` (``FdCapture`` sees to it).
    """

    def __init__(self, fd: int, log_fd: int, log_path: Path) -> None:
        _flush_streams(fd)
        self.fd = fd
        self.log_path = log_path
        self._previous = os.dup(fd)
        self._log = os.dup(log_fd)  # our own: a pump that outlives stop() keeps a valid descriptor
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


# fd -> its open captures, bottom first. Guarded by _lock: captures may start and stop in any thread.
_stacks: dict[int, list[FdCapture]] = {}
_lock = threading.Lock()


class FdCapture:
    """Capture of one descriptor into one log file, stoppable whatever the order of the others."""

    def __init__(self, fd: int, log_path: Path) -> None:
        self.fd = fd
        self.log_path = log_path
        self._log_fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        with _lock:
            try:
                self._tee = FdTee(fd, self._log_fd, log_path)
            except OSError:
                os.close(self._log_fd)
                raise
            _stacks.setdefault(fd, []).append(self)

    def stop(self) -> None:
        """Stop this capture; captures opened after it and still open go on, into the same logs."""
        with _lock:
            stack = _stacks.get(self.fd, [])
            if self not in stack:
                return
            index = stack.index(self)
            above = stack[index + 1:]
            for level in reversed(stack[index:]):  # top first: each level drains into the one below
                level._tee.stop()
            del stack[index:]
            os.close(self._log_fd)
            for level in above:
                try:
                    level._tee = FdTee(level.fd, level._log_fd, level.log_path)
                except OSError as error:  # out of descriptors: that run goes on without capture
                    os.close(level._log_fd)
                    log.warning("output capture into %s stopped: %s", level.log_path, error)
                    continue
                stack.append(level)


class OutputCapture:
    """Capture of both stdout and stderr into two files of one run directory."""

    def __init__(self, stdout_path: Path, stderr_path: Path) -> None:
        self._captures: list[FdCapture] = []
        try:
            self._captures.append(FdCapture(1, stdout_path))
            self._captures.append(FdCapture(2, stderr_path))
        except OSError as error:  # no fd 1/2 (a daemon, pythonw): run without capture, say so
            self.stop()
            log.warning("output capture disabled: %s", error)

    def stop(self) -> None:
        """Stop in reverse order of start (stderr first), restoring the terminal."""
        while self._captures:
            self._captures.pop().stop()
