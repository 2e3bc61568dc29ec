"""Turning names from a URL into paths inside the root, and refusing those that would leave it.

Every experiment, run and file name in a URL is checked component by component (no ``..``, no
leading dot, no slash or NUL inside a component, nothing absolute), and the resolved path, after
symlinks, must still lie inside the run directory: a symlink pointing out of it is refused too.
"""
from __future__ import annotations

import os
from pathlib import Path

from expq._fs import check_name
from expq.errors import ExpqError, InputError, NotFound
from expq.experiment import tree

__all__ = ["Refused", "experiment_dir", "run_dir", "file_in_run", "read_text_from"]

LOG_CHUNK = 256 * 1024  # the most one log poll returns
LOG_START = 64 * 1024  # a log opened without an offset starts this far before its end


class Refused(ExpqError):
    """A path in a URL that would leave the run directory (answered 403)."""


def experiment_dir(root: Path, name: str) -> Path:
    """``<root>/experiments/<name>``.

    Raises:
        NotFound: no such experiment (or an unsafe name).
    """
    try:
        check_name("experiment", name)
    except InputError:
        raise NotFound("experiment", name) from None
    path = root / tree.EXPERIMENTS / name
    if not path.is_dir():
        raise NotFound("experiment", name)
    return path


def run_dir(root: Path, experiment: str, run: str) -> Path:
    """The directory of run ``run`` (``top/nested/...``) of an experiment.

    Raises:
        NotFound: no such experiment or run (or an unsafe name).
    """
    path = experiment_dir(root, experiment)
    parts = run.split("/")
    for index, part in enumerate(parts):
        try:
            check_name("run", part)
        except InputError:
            raise NotFound("run", run) from None
        path = path / part if index == 0 else path / tree.RUNS / part
    if not path.is_dir() or not tree.is_run_dir(path):
        raise NotFound("run", f"{experiment}/{run}")
    return path


def file_in_run(run_path: Path, relative: str) -> Path:
    """A file inside a run directory, named relative to it.

    Raises:
        Refused: absolute, ``..``, or a symlink that leads out of the run directory.
        NotFound: no such file.
    """
    if not relative or relative.startswith("/") or "\\" in relative or "\x00" in relative:
        raise Refused(f"refused: {relative!r} is not a path inside the run directory")
    if any(part in ("..", ".") for part in relative.split("/")):
        raise Refused(f"refused: {relative!r} leaves the run directory")
    base = os.path.realpath(run_path)
    target = os.path.realpath(os.path.join(base, relative))
    if os.path.commonpath([base, target]) != base:
        raise Refused(f"refused: {relative!r} leads out of the run directory")
    if not os.path.isfile(target):
        raise NotFound("file", relative)
    return Path(target)


def read_text_from(path: Path, offset: int | None) -> dict[str, object]:
    """A log's bytes from ``offset`` (default: its last ``LOG_START`` bytes), at most ``LOG_CHUNK`` of them.

    Returns ``text``, the ``offset`` to ask for next, the ``start`` of this text and the file ``size``;
    a missing file reads as empty. Only the bytes after ``offset`` are read, so following a log costs
    what it grew.
    """
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            start = max(0, size - LOG_START) if offset is None else min(max(0, offset), size)
            handle.seek(start)
            data = handle.read(min(LOG_CHUNK, size - start))
    except OSError:
        return {"text": "", "offset": 0, "start": 0, "size": 0, "missing": True}
    if start + len(data) < size:  # more to come: end on a whole UTF-8 character
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as torn:
            if torn.start >= len(data) - 3:
                data = data[: torn.start]
    return {"text": data.decode("utf-8", errors="replace"), "offset": start + len(data), "start": start,
            "size": size, "missing": False}
