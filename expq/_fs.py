"""Filesystem primitives every part shares: atomic writes, durability, safe names."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

from expq.errors import InputError

__all__ = ["atomic_write", "write_file", "read_json_object", "fsync_dir", "sync_filesystem", "check_name", "slug", "ensure_dir", "make_private_dir", "MAX_NAME",
           "FILE_MODE", "DIR_MODE"]

MAX_NAME = 128
# Everything expq creates is its user's alone, whatever the umask: specs, configs and logs may hold
# secrets (--env API_TOKEN=..., --set password=...). A root shared with a group says so explicitly.
FILE_MODE = 0o600
DIR_MODE = 0o700
_NOFOLLOW = os.O_NOFOLLOW | os.O_CLOEXEC  # a symlink planted in the tree is never written through
_SLUG_UNSAFE = re.compile(r"[^A-Za-z0-9._=,+@-]+")
_UNSAFE_IN_NAME = re.compile(r"[/\\\x00-\x1f\x7f]")


def atomic_write(path: str | os.PathLike[str], data: bytes | str, durable: bool = True) -> None:
    """Write ``path`` so a reader sees the old content or the new, never a torn file.

    The temp file lives in the same directory (so ``os.replace`` is a rename);
    ``durable`` adds fsync of the file and of its directory, so the write survives a power loss.
    """
    path = os.fspath(path)
    tmp = f"{path}.tmp.{os.getpid()}"
    payload = data.encode() if isinstance(data, str) else data
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _NOFOLLOW, FILE_MODE)
    try:
        try:
            _write_all(fd, payload)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError:
        os.unlink(tmp)  # a full disk must not also keep the partial temp file
        raise
    if durable:
        fsync_dir(os.path.dirname(path) or ".")


def write_file(path: str | os.PathLike[str], data: bytes, exclusive: bool = False) -> os.stat_result:
    """Write ``path`` in place, without a temp file, and return its stat.

    Only for files nobody reads while they are written (a spec before its rename publishes it, a
    job's files before its child starts) or whose readers treat a torn file as absent (a lease).
    ``exclusive`` refuses to replace an existing file.
    """
    flags = os.O_WRONLY | os.O_CREAT | _NOFOLLOW | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, FILE_MODE)
    try:
        _write_all(fd, data)
        return os.fstat(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, payload: bytes) -> None:
    view = memoryview(payload)
    while view:
        view = view[os.write(fd, view):]


def read_json_object(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """A JSON object from a file another process writes, or None when it is absent, unreadable or
    torn (after a power loss): such a file is never trusted, only ignored."""
    try:
        with open(path, "rb") as handle:
            data = json.loads(handle.read())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def fsync_dir(path: str | os.PathLike[str]) -> None:
    """Make the entries of a directory (creations, renames) durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_filesystem(path: str | os.PathLike[str]) -> None:
    """Flush every dirty page of the filesystem holding ``path`` in one call.

    One ``syncfs`` after writing thousands of files costs far less than one fsync per file,
    which is how a 10,000-job sweep stays durable and fast.
    """
    import ctypes  # here, not at module level: ~10 ms of start-up for every command

    syncfs = getattr(ctypes.CDLL(None, use_errno=True), "syncfs", None)  # the libc already loaded
    if syncfs is None:
        os.sync()
        return
    fd = os.open(path, os.O_RDONLY)
    try:
        if syncfs(fd) != 0:
            os.sync()
    finally:
        os.close(fd)


def check_name(kind: str, name: str) -> str:
    """Return ``name`` if it is safe as one path component inside the tree.

    Raises:
        InputError: empty, too long, ``.``/``..``, a leading dot, a slash, a NUL or a control character.
    """
    if not isinstance(name, str) or not name:
        raise InputError(f"invalid {kind} name {name!r}: must not be empty")
    if len(name) > MAX_NAME:
        raise InputError(f"invalid {kind} name {name[:20]!r}...: longer than {MAX_NAME} characters")
    if name in (".", "..") or name.startswith("."):
        raise InputError(f"invalid {kind} name {name!r}: must not start with a dot")
    if _UNSAFE_IN_NAME.search(name):
        raise InputError(f"invalid {kind} name {name!r}: must not contain '/', '\\', NUL or control characters")
    return name


def slug(text: str, limit: int = 80) -> str:
    """Turn free text (sweep values, a command) into a readable, safe path component."""
    cleaned = _SLUG_UNSAFE.sub("_", text).strip("._") or "run"
    return cleaned[:limit]


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and its parent) owner-only, whatever the umask, or accept folders that only this
    user can have made: real directories, owned by this user, writable by nobody else. A symlink or
    another user's folder planted in the tree is refused, never followed.

    Raises:
        InputError: naming the unsafe folder and what is wrong with it. OSError: the disk.
    """
    import stat

    for folder in (path.parent, path):
        try:
            os.mkdir(folder, DIR_MODE)
            continue
        except FileExistsError:
            pass
        info = os.lstat(folder)
        if stat.S_ISLNK(info.st_mode):
            problem = "a symbolic link"
        elif not stat.S_ISDIR(info.st_mode):
            problem = "not a directory"
        elif info.st_uid != os.geteuid():
            problem = f"owned by uid {info.st_uid}"
        elif info.st_mode & 0o022:
            problem = f"writable by others (mode {stat.S_IMODE(info.st_mode):o})"
        else:
            continue
        raise InputError(f"run directory {folder} was not made by expq ({problem}); refusing to use it")


def ensure_dir(path: Path) -> Path:
    """``mkdir -p`` that returns the path, for chaining. Every folder it creates, parents included
    (which ``Path.mkdir(parents=True)`` would make with the umask's modes), is owner-only."""
    missing = []
    probe = Path(path)
    while not probe.is_dir():
        missing.append(probe)
        if probe.parent == probe:
            break
        probe = probe.parent
    for folder in reversed(missing):
        try:
            os.mkdir(folder, DIR_MODE)
        except FileExistsError:
            if not folder.is_dir():
                raise
    return path
