"""A worker runs whatever the queue says, so it only serves a queue nobody else can write to: every
folder and control file of the root, checked at start and at every heartbeat, and the owner of every
spec, lease and cancel request before acting on it."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from expq._fs import MODES, foreign_writer
from expq.errors import InsecureQueue

__all__ = ["check_private_dir", "check_spec_owner", "owned_by_me", "private_problem"]


def private_problem(path: Path, directory: bool = True) -> str | None:
    """Why ``path`` must not be trusted (another owner, writable by others, the wrong kind), or None.

    In a root shared with a group (``expq init --shared-group``), what belongs to that group may be
    owned by any of its members and writable by the group, never by others."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None if not directory else "missing"
    if directory and not stat.S_ISDIR(info.st_mode):
        return "not a directory"
    if not directory and not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    return _writer_problem(path, info)


def _shared(info: os.stat_result) -> bool:
    return MODES.group is not None and info.st_gid == MODES.group


def _writer_problem(path: Path, info: os.stat_result) -> str | None:
    problem = foreign_writer(info)
    if problem is None:
        return None
    if problem.startswith("owned by"):
        return (f"{problem}, not by you (uid {os.geteuid()}); "
                "workers only serve queues their own user (or their shared group) owns")
    return (f"{problem.replace('others', 'other users')}, so anyone could queue commands you would run; "
            f"fix: chmod {'o' if _shared(info) else 'go'}-w '{path}'")


def check_private_dir(path: Path) -> None:
    """Refuse a queue directory owned by another user, writable by group or others, or not a directory.

    Raises:
        InsecureQueue: with the command that fixes it.
    """
    problem = private_problem(path)
    if problem is not None:
        raise InsecureQueue(path, problem)


def owned_by_me(info: os.stat_result) -> bool:
    """Whether a control file (lease, cancel request) was written by this user (or, in a shared root,
    by a member of its group), and so may be acted on."""
    return _writer_problem(Path(), info) is None


def check_spec_owner(path: Path, info: os.stat_result) -> str | None:
    """Why a spec file must not be run, or None when it is trusted."""
    if info.st_uid != os.geteuid() and not _shared(info):
        return (f"spec {path.name} is owned by uid {info.st_uid}, not by the worker's user "
                f"(uid {os.geteuid()}); resubmit it as that user")
    if _writer_problem(path, info) is not None:
        return f"spec {path.name} is writable by other users (mode {stat.S_IMODE(info.st_mode):o}); resubmit it"
    return None
