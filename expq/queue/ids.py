"""Job ids: short increasing integers that never repeat, even with many concurrent submitters."""
from __future__ import annotations

import os

from filelock import FileLock

from expq._fs import atomic_write
from expq.errors import ExpqError
from expq.queue.paths import QueuePaths

__all__ = ["allocate_ids", "last_id"]


def last_id(paths: QueuePaths) -> int:
    """The highest id handed out so far (0 for a new queue)."""
    try:
        return int(paths.id_counter.read_text() or 0)
    except FileNotFoundError:
        return 0
    except ValueError as exc:
        raise ExpqError(f"corrupt id counter {paths.id_counter}: {exc}; restore it to the highest job id") from None


def allocate_ids(paths: QueuePaths, count: int) -> range:
    """Reserve ``count`` consecutive ids with one short lock, however large the sweep.

    The counter is written durably before the lock is released, so an id is never handed out twice,
    not even across a power loss.
    """
    with FileLock(os.fspath(paths.id_lock), timeout=60):
        first = last_id(paths) + 1
        atomic_write(paths.id_counter, str(first + count - 1), durable=True)
    return range(first, first + count)
