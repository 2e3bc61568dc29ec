"""The queue's format version, and the upgrade of a root written by an older expq.

Format 1 kept every pending spec flat in ``pending/<prio>-<id>.json``; format 2 groups them by what a
worker needs to run them (``pending/<bucket>/<prio>/<id>.json``, see ``QueuePaths.file_name``) and
keeps jobs waiting for dependencies in ``pending/after/``. ``queue/format`` names the format; an expq
that finds a newer one refuses the root instead of misreading it.
"""
from __future__ import annotations

import os

from expq.errors import InputError
from expq.queue.dependents import unfinished
from expq.queue.paths import FORMAT_VERSION, QueuePaths
from expq.queue.spec import MAX_PRIORITY, JobSpec
from expq.queue.states import State
from expq.queue.store import JobQueue, check_file_name, read_queue_file

__all__ = ["NewerFormat", "check_format", "migrate_flat_pending"]


class NewerFormat(InputError):
    """The root was written by a newer expq, whose queue this version would misread."""


def check_format(paths: QueuePaths) -> bool:
    """True when the root is in this version's format; False when it needs upgrading (format 1 has
    no ``format`` file).

    Raises:
        NewerFormat: a newer expq wrote it. InputError: the format file is not a version number.
    """
    try:
        raw, _ = read_queue_file(paths.format_file, limit=64)
    except FileNotFoundError:
        return False
    text = raw.decode(errors="replace").strip()
    if not (text.isascii() and text.isdigit()):
        raise InputError(f"{paths.format_file} does not hold a format version: {text[:20]!r}")
    if int(text) > FORMAT_VERSION:
        raise NewerFormat(f"{paths.root} uses queue format {text}, newer than this expq knows "
                          f"({FORMAT_VERSION}): upgrade expq to use it")
    return int(text) == FORMAT_VERSION


def migrate_flat_pending(queue: JobQueue) -> int:
    """Rename each format-1 pending spec into its bucket (or ``after/``); returns how many moved.

    One rename per job: an old worker claiming the same file at the same moment wins or loses it
    whole. A spec that cannot be read is moved aside with the reason, as a worker would."""
    top = queue.paths.state_dir(State.PENDING)
    moved = 0
    for entry in os.scandir(top):
        if not entry.name.endswith(".json"):  # a bucket (no bucket's name ends so)
            continue
        try:
            raw, _ = read_queue_file(entry.path)
            spec = JobSpec.from_json(raw)
            check_file_name(entry.name, spec, None)
            if entry.name != f"{MAX_PRIORITY - spec.priority:05d}-{spec.id:08d}.json":
                raise InputError(f"{entry.name} does not match its spec (job {spec.id}, priority {spec.priority})")
        except FileNotFoundError:  # claimed meanwhile by an old worker
            continue
        except InputError as exc:
            queue.reject(State.PENDING, entry.name, str(exc))
            continue
        moved += queue.place_pending(entry.path, spec, waiting=bool(unfinished(queue.paths, [spec])))
    return moved
