"""Filesystem primitives every part shares: atomic writes, durability, safe names."""
from __future__ import annotations

import errno
import functools
import json
import os
import re
import stat
from pathlib import Path
from typing import Any, BinaryIO

from expq.errors import InputError

__all__ = ["atomic_write", "write_file", "read_json_object", "fsync_dir", "sync_filesystem", "check_name", "slug", "ensure_dir", "make_dir", "make_private_dir", "MAX_NAME",
           "MODES", "Modes", "adopt_root", "SHARED_GROUP_FILE",
           "foreign_writer", "read_at_most", "pid_exists", "which", "NotRegular", "open_regular", "open_for_reading", "NOFOLLOW"]

MAX_NAME = 128
SHARED_GROUP_FILE = "shared-group"  # <root>/queue/shared-group: the group a shared root belongs to


class Modes:
    """The modes of everything expq creates. Owner-only by default, whatever the umask: specs,
    configs and logs may hold secrets (--env API_TOKEN=..., --set password=...). A root shared with
    a group says so (``expq init --shared-group G``), and a process working on it then creates
    group-readable and -writable files and setgid folders, so the group's members share the tree."""

    def __init__(self) -> None:
        self.file = 0o600
        self.dir = 0o700
        self.group: int | None = None  # the gid of a shared root, once adopted

    def share_with(self, gid: int) -> None:
        """Group modes from now on, in this process and the jobs it starts (the umask keeps the
        group's bits and never lets others in)."""
        self.file, self.dir, self.group = 0o660, 0o2770, gid
        os.umask(0o007)


MODES = Modes()


def adopt_root(root: Path) -> None:
    """Take the modes of the root this process works on: a root with ``queue/shared-group`` is shared
    with that group (the file must belong to the group, writable by its owner only)."""
    import grp

    path = Path(root) / "queue" / SHARED_GROUP_FILE
    try:
        info = os.lstat(path)
        name = path.read_text().strip()
    except OSError:  # no setting (or no queue yet): a private root
        return
    try:
        gid = grp.getgrnam(name).gr_gid
    except KeyError:
        return
    if stat.S_ISREG(info.st_mode) and info.st_gid == gid and not info.st_mode & 0o022:
        MODES.share_with(gid)
# Every open of a file in the tree carries these: a symlink planted there is never written through,
# and a FIFO planted there is never waited on (opening one blocks until the other side comes;
# O_NONBLOCK changes nothing for a file).
NOFOLLOW = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
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
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | NOFOLLOW, MODES.file)
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
    flags = os.O_WRONLY | os.O_CREAT | NOFOLLOW | (os.O_EXCL if exclusive else os.O_TRUNC)
    fd = os.open(path, flags, MODES.file)
    try:
        _write_all(fd, data)
        return os.fstat(fd)
    finally:
        os.close(fd)


_FIRST_READ = 64 << 10  # bytes: what a first read asks for at least (a small allocation)


def read_at_most(fd: int, limit: int, expected: int = 0, regular: bool = False) -> bytes:
    """What ``fd`` holds, but never more than ``limit + 1`` bytes: one byte over the limit tells the
    caller the file is too large, without reading a huge (or endless, ``/dev/zero``) one.

    ``os.read`` allocates what it is asked for (16 MiB per spec read cost a claim, or ``status --json``,
    an mmap and a munmap each), so reads start at ``expected + 1`` bytes (a file's size from
    ``fstat``; at least 64 KiB unless the file is ``regular``) and double only while they come back
    full. On a ``regular`` file a read that comes back short has reached the end: no further read
    to see it return nothing (one system call fewer per spec file; pipes and devices return short
    reads at any time), and its size is worth trusting for the first read (a 64 KiB buffer for a
    500-byte spec costs as much as the read)."""
    if regular and expected < limit:
        first = os.read(fd, expected + 1)
        if len(first) <= expected:  # the whole file, as nearly every time: no list, no join
            return first
        chunks, size, want = [first], len(first), 2 * (expected + 1)
    else:
        chunks, size, want = [], 0, max(expected + 1, _FIRST_READ)
    while size <= limit:
        asked = min(limit + 1 - size, want)
        chunk = os.read(fd, asked)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if len(chunk) == asked:
            want *= 2
        elif regular:
            break
    return b"".join(chunks)


def pid_exists(pid: int) -> bool:
    """Whether a process with this pid exists on this host (another user's counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _write_all(fd: int, payload: bytes) -> None:
    view = memoryview(payload)
    while view:
        view = view[os.write(fd, view):]


_RECORD_LIMIT = 16 << 20  # bytes: the largest record file, a job.json, is a spec (store.MAX_SPEC_BYTES)


def read_json_object(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """A JSON object from a file another process writes, or None when it is absent, unreadable, torn
    (after a power loss), no regular file or over 16 MiB: such a file is never trusted, only ignored.
    A FIFO in its place is not waited on (a job may leave anything in its run directory, and the
    dashboard reads every run's result). Read with one read sized by its ``fstat`` (``status --json``
    reads one per job)."""
    try:
        fd, size = open_regular(path, follow_links=True)
        try:
            raw = read_at_most(fd, _RECORD_LIMIT, size, regular=True) if size <= _RECORD_LIMIT else None
        finally:
            os.close(fd)
        if raw is None or len(raw) > _RECORD_LIMIT:  # larger than any record expq writes
            return None
        data = json.loads(raw)
    except (OSError, ValueError, RecursionError):
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


def make_private_dir(path: Path) -> bool:
    """Create ``path`` (and its parent) owner-only, whatever the umask, or accept folders that only this
    user can have made: real directories, owned by this user, writable by nobody else. A symlink or
    another user's folder planted in the tree is refused, never followed. True when ``path`` was
    created now (so it holds nothing yet).

    Raises:
        InputError: naming the unsafe folder and what is wrong with it. OSError: the disk.
    """
    try:
        return _make_private_dir(path)
    except FileNotFoundError:  # its checked parent was removed since (``expq rm``): check it again
        _CHECKED_PARENTS.discard(str(path.parent))
        return _make_private_dir(path)


def _make_private_dir(path: Path) -> bool:
    for folder in (path.parent, path):
        if folder == path.parent and str(folder) in _CHECKED_PARENTS:
            continue
        try:
            make_dir(folder)
            if folder is path:
                return True
            _CHECKED_PARENTS.add(str(folder))
            continue
        except FileExistsError:
            pass
        info = os.lstat(folder)
        problem: str | None
        if stat.S_ISLNK(info.st_mode):
            problem = "a symbolic link"
        elif not stat.S_ISDIR(info.st_mode):
            problem = "not a directory"
        else:
            problem = foreign_writer(info)
            if problem is None:
                if folder == path.parent:
                    _CHECKED_PARENTS.add(str(folder))
                continue
        raise InputError(f"run directory {folder} was not made by expq ({problem}); refusing to use it")
    return False


# Experiment folders this process made or checked: a worker starts thousands of runs in one, and the
# folder above them (``experiments/``, private) lets nobody else replace it meanwhile.
_CHECKED_PARENTS: set[str] = set()


def foreign_writer(info: os.stat_result) -> str | None:
    """Who else could have written this file or folder: another owner, or write bits for others (for
    the group too, unless the root is shared with exactly this file's group); None when nobody."""
    shared = MODES.group is not None and info.st_gid == MODES.group
    if info.st_uid != os.geteuid() and not shared:
        return f"owned by uid {info.st_uid}"
    if info.st_mode & (stat.S_IWOTH if shared else stat.S_IWGRP | stat.S_IWOTH):
        return f"writable by others (mode {stat.S_IMODE(info.st_mode):o})"
    return None


def make_dir(folder: Path) -> None:
    """mkdir with the modes in force; a shared root's folders are setgid (the umask cannot keep them so)."""
    os.mkdir(folder, MODES.dir)
    if MODES.group is not None:
        os.chmod(folder, MODES.dir)


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
            make_dir(folder)
        except FileExistsError:
            if not folder.is_dir():
                raise
    return path


@functools.lru_cache(maxsize=256)
def which(name: str, path: str, cwd: str) -> str:
    """The executable ``exec*p`` would run for ``name``, searched in ``path`` (a PATH value) with
    relative entries taken from ``cwd``; what ``shutil.which`` answers, without importing shutil.

    Cached: most jobs of a worker run the same program with the same PATH, and the search costs a
    stat per PATH entry. A cached program deleted since fails at spawn as "not found" all the same.

    Raises:
        FileNotFoundError: no such executable on the path.
    """
    if "/" in name:
        return os.path.join(cwd, name)
    for directory in path.split(os.pathsep):
        candidate = os.path.join(cwd, directory or ".", name)
        if os.access(candidate, os.X_OK) and not os.path.isdir(candidate):
            return candidate
    raise FileNotFoundError(errno.ENOENT, "command not found", name)


class NotRegular(OSError):
    """A FIFO, socket or device where a file was expected: never read, it may block or never end."""


def open_regular(path: str | os.PathLike[str], follow_links: bool = False) -> tuple[int, int]:
    """A descriptor of a regular file, opened for reading without blocking on a FIFO (nor, unless
    ``follow_links``, following a link), and the file's size.

    Raises:
        FileNotFoundError: absent. IsADirectoryError, NotRegular: not a file. OSError (``ELOOP`` for
            a link): unreadable.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | (0 if follow_links else os.O_NOFOLLOW) | os.O_CLOEXEC)
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, "Is a directory")
        if not stat.S_ISREG(info.st_mode):
            raise NotRegular(errno.EINVAL, "not a regular file")
        return fd, info.st_size
    except BaseException:
        os.close(fd)
        raise


def open_for_reading(path: str | os.PathLike[str]) -> BinaryIO:
    """``open(path, "rb")`` for a file a job writes and may have replaced by anything: a FIFO, socket
    or device in its place raises ``NotRegular`` instead of blocking a reader (or never ending)."""
    return os.fdopen(open_regular(path, follow_links=True)[0], "rb")
