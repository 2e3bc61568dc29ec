"""The fingerprint index: which jobs ran (or will run) a given experiment, command and config.

``submit --skip-existing`` must not read 100,000 specs to learn that a sweep point was queued
before, so every submit records each job's fingerprint in ``queue/fingerprints/<ab>/<hash>``: a
small file holding the comma-separated ids of the jobs with that fingerprint, written atomically
(temp file + rename; not fsynced, like results: the specs' ``syncfs`` covers it). A lookup costs
one failed or small ``open`` per job submitted plus the state of the ids found. Every submit
takes ``fingerprints/.lock`` around "look up, allocate, record, enqueue", so two concurrent
submitters of the same sweep cannot both queue a point. The index is written before the specs are enqueued: a submit that dies in between
leaves ids that never appear, which read as gone and are queued again, never a queued job the
index does not know.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from expq._fs import atomic_write, ensure_dir
from expq.queue.paths import QueuePaths

__all__ = ["fingerprint_of", "index_dir", "locked", "lookup", "record"]

MAX_IDS = 64  # a fingerprint submitted more often keeps its newest ids only


def fingerprint_of(experiment: str, command: Sequence[str], config: Mapping[str, Any]) -> str:
    """A hash of what makes two jobs the same run: experiment, rendered command, resolved config."""
    text = json.dumps([experiment, list(command), config], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def index_dir(paths: QueuePaths) -> Path:
    return paths.queue / "fingerprints"


@contextlib.contextmanager
def locked(paths: QueuePaths, timeout: float = 60.0) -> Iterator[None]:
    """Hold the index lock: held for a few syscalls per job, never while a job runs."""
    from filelock import FileLock  # lazily: start-up time

    ensure_dir(index_dir(paths))
    with FileLock(os.fspath(index_dir(paths) / ".lock"), timeout=timeout):
        yield


def _entry(paths: QueuePaths, fp: str) -> str:
    return os.path.join(index_dir(paths), fp[:2], fp)


def lookup(paths: QueuePaths, fingerprints: Sequence[str]) -> dict[str, list[int]]:
    """The ids recorded for each fingerprint that has any (a damaged entry counts as none)."""
    found: dict[str, list[int]] = {}
    for fp in dict.fromkeys(fingerprints):
        try:
            with open(_entry(paths, fp), "rb") as handle:
                text = handle.read(1 << 16).decode("ascii", "replace")
        except OSError:  # absent, or unreadable: nothing recorded
            continue
        ids = [int(part) for part in text.split(",") if part.isascii() and part.isdigit()]
        if ids:
            found[fp] = ids
    return found


def record(paths: QueuePaths, pairs: Sequence[tuple[str, int]]) -> None:
    """Add ``(fingerprint, id)`` pairs to the index; the caller holds ``locked``."""
    known = lookup(paths, [fp for fp, _ in pairs])
    added: dict[str, list[int]] = {}
    for fp, job in pairs:
        added.setdefault(fp, list(known.get(fp, []))).append(job)
    made: set[str] = set()
    for fp, ids in added.items():
        entry = _entry(paths, fp)
        folder = os.path.dirname(entry)
        if folder not in made:
            ensure_dir(Path(folder))
            made.add(folder)
        atomic_write(entry, ",".join(map(str, ids[-MAX_IDS:])), durable=False)
