"""Workers starting on one host take turns, as many at a time as the host has CPUs.

A worker spends about 0.1 CPU-second starting (the interpreter, its imports, opening the queue).
Thirty-two workers launched together on two CPUs share them fairly, so all of them finish starting
together, after 1.6 s, and no slot runs a job before about 1 s. Taking turns, the first worker's jobs
run after a tenth of a second and each next worker's a little later: the slots wait half as long on
average (first come, first served against processor sharing, for tasks of equal length).

A turn is an ``flock`` on one of N seat files in the user's lock folder (``lock_dir``), taken by the
console script (``launcher/entry.py``) before anything else is imported and given back once the
worker has started its first jobs, or by the kernel when the process ends. A worker that waits longer than ``TURN_TIMEOUT`` for a seat
starts anyway: one stuck while starting (a hung GPU probe, a queue on a stalled file system) delays
the others once, never for good. The seat descriptor is close-on-exec, so jobs never hold a turn.
"""
from __future__ import annotations

import fcntl
import os

from expq.errors import InsecureQueue
from expq.worker.lock_dir import check_lock_dir, lock_dir_name

TYPE_CHECKING = False  # not typing's: this module runs before a worker's start-up turn
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["take_turn", "end_turn", "TURN_TIMEOUT"]

TURN_TIMEOUT = 10.0  # seconds a starting worker waits for a seat before it starts anyway

_held: int | None = None  # this process's seat, while it has one


def take_turn(environ: Mapping[str, str] | None = None, seats: int | None = None,
              timeout: float = TURN_TIMEOUT) -> bool:
    """Wait for a free seat (one of ``seats``, by default this process's CPUs) and hold it until
    ``end_turn``. False when none came within ``timeout`` or the lock folder is unusable: the worker
    then starts at once, as it would without turns."""
    global _held
    if _held is not None:
        return True
    count = seats if seats is not None else len(os.sched_getaffinity(0))
    folder = lock_dir_name(environ)
    try:
        check_lock_dir(folder)
        for seat in range(count):
            fd = _open_seat(folder, seat)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            _held = fd
            return True
        # Every seat is taken: queue for one, spreading the waiters over the seats.
        fd = _open_seat(folder, os.getpid() % count)
    except (OSError, InsecureQueue):
        return False
    if not _wait_for_lock(fd, timeout):
        return False
    _held = fd
    return True


def end_turn() -> None:
    """Give the seat back (nothing when none is held): the next worker's start may go ahead."""
    global _held
    if _held is not None:
        os.close(_held)
        _held = None


def _open_seat(folder: str, seat: int) -> int:
    return os.open(os.path.join(folder, f"start-{seat}.lock"),
                   os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)


def _wait_for_lock(fd: int, timeout: float) -> bool:
    """A blocking ``flock`` in a helper thread, waited for at most ``timeout`` (no polling, no signal).
    Whoever gives up on the descriptor closes it: this function when the lock failed, the thread when
    it comes after the timeout."""
    import threading  # only when waiting: what comes before a seat is every start's

    decided = threading.Lock()
    done = threading.Event()
    locked = abandoned = False

    def wait() -> None:
        nonlocal locked
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            got = True
        except OSError:
            got = False
        with decided:
            if abandoned:
                os.close(fd)
            else:
                locked = got
                done.set()

    threading.Thread(target=wait, name="expq-start-turn", daemon=True).start()
    done.wait(timeout)
    with decided:
        if not done.is_set():
            abandoned = True
            return False
    if not locked:
        os.close(fd)
    return locked
