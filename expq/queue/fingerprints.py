"""The fingerprint index: which jobs ran (or will run) a given experiment, command and config.

``submit --skip-existing`` must not read 100,000 specs to learn that a sweep point was queued
before, so every submit appends each job's fingerprint and id, one ``<hash> <id>`` line, to one of
256 shard files ``queue/fingerprints/<ab>.txt`` (``ab``: the hash's first two hex digits). A submit
costs one append per shard it touches (creating one small file per job cost ~1 ms each on a busy
disk; an append costs 20 us), and a lookup reads only the shards of the fingerprints asked for.
Every submit takes ``fingerprints/.lock`` around "look up, allocate, record, enqueue", so two
concurrent submitters of the same sweep cannot both queue a point. The index is written before the
specs are enqueued (not fsynced: the specs' ``syncfs`` covers it): a submit that dies in between
leaves ids that never appear, which read as gone and are queued again, never a queued job the
index does not know. A line torn by a crash has no newline and is ignored.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from expq._fs import MODES, ensure_dir
from expq.queue.paths import QueuePaths

__all__ = ["fingerprint_of", "index_dir", "locked", "lookup", "record"]

def fingerprint_of(experiment: str, command: Sequence[str], config: Mapping[str, Any]) -> str:
    """A hash of what makes two jobs the same run: experiment, rendered command, resolved config."""
    text = json.dumps([experiment, list(command), config], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:40]


def index_dir(paths: QueuePaths) -> Path:
    return paths.fingerprints


@contextlib.contextmanager
def locked(paths: QueuePaths, timeout: float = 60.0) -> Iterator[None]:
    """Hold the index lock: held for a few syscalls per job, never while a job runs."""
    from filelock import FileLock  # lazily: start-up time

    ensure_dir(index_dir(paths))
    with FileLock(os.fspath(index_dir(paths) / ".lock"), timeout=timeout):
        yield


def _shard(paths: QueuePaths, fp: str) -> str:
    return os.path.join(index_dir(paths), f"{fp[:2]}.txt")


def lookup(paths: QueuePaths, fingerprints: Sequence[str]) -> dict[str, list[int]]:
    """The ids recorded for each of these fingerprints that has any, oldest first."""
    wanted = set(fingerprints)
    found: dict[str, list[int]] = {}
    for shard in sorted({_shard(paths, fp) for fp in wanted}):
        try:
            with open(shard, "rb") as handle:
                text = handle.read().decode("ascii", "replace")
        except OSError:  # absent: nothing recorded in this shard
            continue
        for line in text.split("\n")[:-1]:  # the part after the last newline is empty, or torn
            fp, _, job = line.partition(" ")
            if fp in wanted and job.isascii() and job.isdigit():
                found.setdefault(fp, []).append(int(job))
    return found


def record(paths: QueuePaths, pairs: Sequence[tuple[str, int]]) -> None:
    """Add ``(fingerprint, id)`` pairs to the index, one append per shard; the caller holds ``locked``."""
    shards: dict[str, list[str]] = {}
    for fp, job in pairs:
        shards.setdefault(_shard(paths, fp), []).append(f"{fp} {job}\n")
    for shard, lines in shards.items():
        fd = os.open(shard, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_CLOEXEC, MODES.file)
        try:
            payload = "".join(lines).encode()
            while payload:
                payload = payload[os.write(fd, payload):]
        finally:
            os.close(fd)
