"""Signal handling that only records what arrived; the worker loop acts on it.

Handlers do no work: a signal inside file or process bookkeeping must not re-enter it. Python's
wakeup fd (a self-pipe) makes the loop's ``select`` return as soon as a signal arrives, and SIGCHLD
is caught the same way so a finished job is replaced without waiting for the next poll. SIGHUP is
ignored: a worker outlives the terminal it was started from (its jobs get SIGHUP's default back).
"""
from __future__ import annotations

import os
import select
import signal
from types import FrameType

__all__ = ["SignalFlags", "STOP_SIGNALS"]

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)


class SignalFlags:
    """Counts stop signals (SIGTERM, SIGINT, SIGUSR1 as sent by SLURM before a time limit)."""

    def __init__(self) -> None:
        self.stop_count = 0
        self.last_stop: str | None = None
        self._read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._read_fd, False)
        os.set_blocking(self._write_fd, False)
        self._previous: dict[int, object] = {}

    def install(self) -> None:
        signal.set_wakeup_fd(self._write_fd, warn_on_full_buffer=False)
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._on_stop)
        self._previous[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, self._on_child)
        # A closed terminal (an ssh session that dropped) must not take the worker and its jobs down.
        self._previous[signal.SIGHUP] = signal.signal(signal.SIGHUP, signal.SIG_IGN)

    def uninstall(self) -> None:
        signal.set_wakeup_fd(-1)
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)  # type: ignore[arg-type]
        os.close(self._read_fd)
        os.close(self._write_fd)

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stop_count += 1
        self.last_stop = signal.Signals(signum).name

    def _on_child(self, signum: int, frame: FrameType | None) -> None:
        """Nothing to record: the wakeup fd already woke the loop, which reaps its children."""

    def wait(self, timeout: float, also: int | None = None) -> None:
        """Sleep until a signal arrives, descriptor ``also`` becomes readable, or ``timeout`` passes."""
        if timeout > 0:
            select.select([self._read_fd] if also is None else [self._read_fd, also], [], [], timeout)
        try:
            while os.read(self._read_fd, 4096):
                continue
        except BlockingIOError:
            return
