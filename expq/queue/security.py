"""A worker runs whatever the queue says, so it only serves a queue nobody else can write to: every
folder and control file of the root, checked at start and at every heartbeat, and the owner of every
spec, lease and cancel request before acting on it."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from expq._fs import DIR_MODE
from expq.errors import InsecureQueue

__all__ = ["check_private_dir", "check_spec_owner", "owned_by_me", "private_problem", "DIR_MODE"]


def private_problem(path: Path, directory: bool = True) -> str | None:
    """Why ``path`` must not be trusted (another owner, writable by others, the wrong kind), or None."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return None if not directory else "missing"
    if directory and not stat.S_ISDIR(info.st_mode):
        return "not a directory"
    if not directory and not stat.S_ISREG(info.st_mode):
        return "not a regular file"
    if info.st_uid != os.geteuid():
        return (f"owned by uid {info.st_uid}, not by you (uid {os.geteuid()}); "
                "workers only serve queues their own user owns")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return (f"writable by other users (mode {stat.S_IMODE(info.st_mode):o}), so anyone could queue "
                f"commands you would run; fix: chmod go-w '{path}'")
    return None


def check_private_dir(path: Path) -> None:
    """Refuse a queue directory owned by another user, writable by group or others, or not a directory.

    Raises:
        InsecureQueue: with the command that fixes it.
    """
    problem = private_problem(path)
    if problem is not None:
        raise InsecureQueue(path, problem)


def owned_by_me(info: os.stat_result) -> bool:
    """Whether a control file (lease, cancel request) was written by this user, and so may be acted on."""
    return info.st_uid == os.geteuid() and not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def check_spec_owner(path: Path, info: os.stat_result) -> str | None:
    """Why a spec file must not be run, or None when it is trusted."""
    if info.st_uid != os.geteuid():
        return (f"spec {path.name} is owned by uid {info.st_uid}, not by the worker's user "
                f"(uid {os.geteuid()}); resubmit it as that user")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"spec {path.name} is writable by other users (mode {stat.S_IMODE(info.st_mode):o}); resubmit it"
    return None
