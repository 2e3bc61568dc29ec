"""Waking an idle worker as soon as the queue's change signal moves (Linux inotify, through libc).

An idle worker backs off its polling (see ``Worker._sleep_time``); this keeps it prompt: a submit,
requeue or promotion on this host touches ``queue/changed``, and the inotify descriptor becomes
readable. Where inotify is missing, or the change comes from another host of a shared filesystem
(inotify sees local changes only), the bounded backoff is what remains.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path

__all__ = ["ChangeWatch"]

log = logging.getLogger(__name__)

_IN_ATTRIB, _IN_CLOSE_WRITE = 0x4, 0x8
_IN_NONBLOCK, _IN_CLOEXEC = os.O_NONBLOCK, os.O_CLOEXEC


class ChangeWatch:
    """A descriptor that becomes readable when ``path`` is touched, made when first asked for
    (``arm``): a worker that never waits idle (a draining one that always has work) never pays for
    it, nor for closing it, which waits out a kernel grace period (about 7 ms here)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd: int | None = None  # None until armed, and without inotify
        self._armed = False

    def arm(self) -> bool:
        """Start watching ``path`` (an existing file), once; True when this call started it."""
        if self._armed:
            return False
        self._armed = True
        import ctypes  # only an idle worker needs it: not every command that imports the worker

        try:
            libc = ctypes.CDLL(None, use_errno=True)  # the C library this interpreter runs on
            fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
            if fd < 0:
                raise OSError(ctypes.get_errno(), "inotify_init1")
            if libc.inotify_add_watch(fd, os.fsencode(self.path), _IN_ATTRIB | _IN_CLOSE_WRITE) < 0:
                os.close(fd)
                raise OSError(ctypes.get_errno(), f"inotify_add_watch {self.path}")
        except (OSError, AttributeError) as exc:
            log.debug("no inotify (%s): an idle worker polls", exc)
            return False
        self.fd = fd
        return True

    def drain(self) -> None:
        """Consume the pending events (they only say: look again)."""
        if self.fd is None:
            return
        try:
            while os.read(self.fd, 4096):
                continue
        except BlockingIOError:
            return

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
