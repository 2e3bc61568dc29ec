"""Tags and a note per job: ``labels.json`` in the job's run directory, beside ``job.json``.

The spec is immutable; labels change whenever the user wants, so they live in a small file of their
own, written atomically (temp file + rename) under an ``flock`` of the run directory, so two
``expq tag`` commands never lose each other's tags. The runs table, the exporters and the dashboard
read the run directory anyway, so they find the labels there; ``status --tag`` lists the run
directories of the root once (names only) and reads only the ``labels.json`` files that exist.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from expq._fs import MODES, atomic_write
from expq.contract import LABELS_JSON
from expq.errors import InputError

__all__ = ["Labels", "LABELS_JSON", "check_tag", "read_labels", "update_labels", "tagged_run_dirs", "MAX_NOTE"]

MAX_NOTE = 10_000
MAX_TAG = 64
_TAG = re.compile(r"[A-Za-z0-9_.:/=@][A-Za-z0-9_.:/=@+-]*")


def check_tag(tag: str) -> str:
    """A tag is a short word: letters, digits and ``_ . : / = @ + -``, not starting with ``+`` or ``-``
    (those mean add and remove in ``expq tag``).

    Raises:
        InputError: naming the tag.
    """
    if not _TAG.fullmatch(tag) or len(tag) > MAX_TAG:
        raise InputError(f"invalid tag {tag!r}: expected up to {MAX_TAG} letters, digits or _.:/=@+- "
                         "not starting with + or -")
    return tag


@dataclass(frozen=True)
class Labels:
    """What the user attached to a job."""

    tags: tuple[str, ...] = ()
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"version": 1, "tags": list(self.tags), "note": self.note}

    @classmethod
    def from_dict(cls, data: Any) -> Labels:
        """Lenient: a damaged or foreign file gives what can be read of it."""
        if not isinstance(data, dict):
            return cls()
        tags = data.get("tags")
        note = data.get("note")
        return cls(tuple(t for t in tags if isinstance(t, str)) if isinstance(tags, list) else (),
                   note if isinstance(note, str) else "")


def read_labels(run_dir: Path) -> Labels:
    """The labels of a job; empty when it has none (or the file is unreadable)."""
    from expq._fs import read_json_object

    return Labels.from_dict(read_json_object(run_dir / LABELS_JSON))


@contextlib.contextmanager
def _locked(run_dir: Path) -> Iterator[None]:
    fd = os.open(run_dir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def update_labels(run_dir: Path, add: Iterable[str] = (), remove: Iterable[str] = (),
                  note: str | None = None) -> Labels:
    """Add and remove tags (in that order), set the note when given; returns the new labels.

    Creates the run directory (owner-only, as the worker would) for a job that has not started.
    """
    for folder in (run_dir.parent, run_dir):
        with contextlib.suppress(FileExistsError):
            os.mkdir(folder, MODES.dir)
    with _locked(run_dir):
        current = read_labels(run_dir)
        dropped = set(remove)
        tags = [t for t in dict.fromkeys([*current.tags, *add]) if t not in dropped]
        new = Labels(tuple(tags), current.note if note is None else note)
        if new != current:
            atomic_write(run_dir / LABELS_JSON, json.dumps(new.to_dict()) + "\n", durable=False)
    return new


def tagged_run_dirs(experiments: Path, tag: str) -> dict[int, Path]:
    """Run directories of queued jobs (``<id>-<name>``) whose labels carry ``tag``, by job id."""
    found: dict[int, Path] = {}
    try:
        experiment_dirs = [e.path for e in os.scandir(experiments) if e.is_dir(follow_symlinks=False)]
    except FileNotFoundError:
        return found
    for folder in experiment_dirs:
        try:
            entries = list(os.scandir(folder))
        except OSError:
            continue
        for entry in entries:
            head, dash, _ = entry.name.partition("-")
            if not dash or not (head.isascii() and head.isdigit()):
                continue
            path = Path(entry.path)
            if tag in read_labels(path).tags:
                found[int(head)] = path
    return found
