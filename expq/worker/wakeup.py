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
    """A descriptor that becomes readable when ``path`` is touched; ``fd`` is None without inotify."""

    def __init__(self) -> None:
        self.fd: int | None = None

    def watch(self, path: Path) -> None:
        """Start watching ``path`` (an existing file); without inotify, ``fd`` stays None."""
        import ctypes  # only a serving worker needs it: not every command that imports the worker
        import ctypes.util

        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
            fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
            if fd < 0:
                raise OSError(ctypes.get_errno(), "inotify_init1")
            if libc.inotify_add_watch(fd, os.fsencode(path), _IN_ATTRIB | _IN_CLOSE_WRITE) < 0:
                os.close(fd)
                raise OSError(ctypes.get_errno(), f"inotify_add_watch {path}")
        except (OSError, AttributeError) as exc:
            log.debug("no inotify (%s): an idle worker polls", exc)
            return
        self.fd = fd

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
