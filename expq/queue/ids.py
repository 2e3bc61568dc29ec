"""Job ids: short increasing integers that never repeat, even with many concurrent submitters, and
never again after the counter file was emptied, damaged or deleted."""
from __future__ import annotations

import os

from filelock import FileLock

from expq._fs import MODES, atomic_write
from expq.errors import ExpqError, InputError
from expq.queue.paths import QueuePaths, job_id_of
from expq.queue.states import FINISHED, State

__all__ = ["allocate_ids", "last_id", "highest_id_in_queue"]


def last_id(paths: QueuePaths) -> int:
    """The highest id handed out so far (0 for a new queue).

    The counter file says; when it is missing, empty or unreadable, the queue itself does (the
    highest id of any file in it), so a damaged counter can never hand out an id again.

    Raises:
        ExpqError: the counter is negative (someone wrote it by hand; refuse rather than guess).
    """
    from expq.queue.store import read_queue_file  # store imports this module's users, not the reverse

    try:
        raw, _ = read_queue_file(paths.id_counter, limit=64)
        value = int(raw.decode("ascii").strip())
    except FileNotFoundError:
        return highest_id_in_queue(paths)
    except (InputError, ValueError, UnicodeDecodeError):
        return highest_id_in_queue(paths)
    if value < 0:
        raise ExpqError(f"the id counter {paths.id_counter} holds a negative number ({value}); "
                        "delete the file and expq rebuilds it from the queue")
    return value


def highest_id_in_queue(paths: QueuePaths) -> int:
    """The highest job id of any file in the queue's folders (a full listing: only for repairs)."""
    highest = 0
    folders = [paths.state_dir(s) for s in State] + [paths.rejected, paths.incoming]
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            names = [entry.name]
            if folder == paths.incoming and entry.is_dir(follow_symlinks=False):
                names = os.listdir(entry.path)  # a submit's batch
            elif folder == paths.state_dir(State.PENDING) and entry.is_dir(follow_symlinks=False):
                names = [name for _, _, files in os.walk(entry.path) for name in files]  # a bucket
            for name in names:
                try:
                    highest = max(highest, job_id_of(name.removesuffix(".reason") + ".json"
                                                     if name.endswith(".reason") else name))
                except ValueError:
                    continue
    return highest


def _taken(paths: QueuePaths, job_id: int) -> bool:
    return any(paths.job_file(state, job_id).exists() for state in FINISHED)


def allocate_ids(paths: QueuePaths, count: int) -> range:
    """Reserve ``count`` consecutive ids with one short lock, however large the sweep.

    The counter is written durably before the lock is released, so an id is never handed out twice,
    not even across a power loss. A counter found behind the queue (the first or last id of the
    range already belongs to a finished job) is rebuilt from the queue first.
    """
    with FileLock(os.fspath(paths.id_lock), timeout=60, mode=MODES.file):
        first = last_id(paths) + 1
        if _taken(paths, first) or _taken(paths, first + count - 1):
            first = highest_id_in_queue(paths) + 1
        atomic_write(paths.id_counter, str(first + count - 1), durable=True)
    return range(first, first + count)
