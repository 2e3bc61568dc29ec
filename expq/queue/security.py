"""A worker runs whatever the queue says, so it only serves a queue nobody else can write to."""
from __future__ import annotations

import os
import stat
from pathlib import Path

from expq.errors import InsecureQueue

__all__ = ["check_private_dir", "check_spec_owner", "DIR_MODE"]

DIR_MODE = 0o755


def check_private_dir(path: Path) -> None:
    """Refuse a queue directory owned by another user or writable by group or others.

    Raises:
        InsecureQueue: with the command that fixes it.
    """
    info = os.stat(path)
    if info.st_uid != os.geteuid():
        raise InsecureQueue(path, f"owned by uid {info.st_uid}, not by you (uid {os.geteuid()}); "
                                  "workers only serve queues their own user owns")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise InsecureQueue(path, f"writable by other users (mode {stat.S_IMODE(info.st_mode):o}), "
                                  f"so anyone could queue commands you would run; fix: chmod go-w '{path}'")


def check_spec_owner(path: Path, info: os.stat_result) -> str | None:
    """Why a spec file must not be run, or None when it is trusted."""
    if info.st_uid != os.geteuid():
        return (f"spec {path.name} is owned by uid {info.st_uid}, not by the worker's user "
                f"(uid {os.geteuid()}); resubmit it as that user")
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"spec {path.name} is writable by other users (mode {stat.S_IMODE(info.st_mode):o}); resubmit it"
    return None
