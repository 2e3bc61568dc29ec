"""A root shared with a group of colleagues, said explicitly: ``queue/shared-group`` names the group,
its folders are setgid and group-writable (2770), its files group-readable and -writable (0660), and
every security check accepts what belongs to that group, never anything writable by others. Sharing
a root means trusting the group's members: a worker runs what any of them queues."""
from __future__ import annotations

import grp
import os
import stat

from expq._fs import MODES, SHARED_GROUP_FILE, atomic_write
from expq.errors import InputError
from expq.queue.store import JobQueue

__all__ = ["share_root"]


def share_root(queue: JobQueue, group: str) -> int:
    """Create the root if needed and hand it to ``group``; returns the group's id.

    Raises:
        InputError: no such group, or this user is not one of its members.
    """
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        raise InputError(f"no such group: {group!r}") from None
    if os.geteuid() != 0 and gid not in os.getgroups() and gid != os.getegid():
        raise InputError(f"you are not a member of group {group!r}: add yourself first (usermod -aG {group} $USER)")
    MODES.share_with(gid)
    queue.create()
    for folder, _, files in os.walk(queue.root):
        _give(folder, gid, MODES.dir)
        for name in files:
            path = os.path.join(folder, name)
            _give(path, gid, (os.lstat(path).st_mode | 0o060) & 0o770)
    setting = queue.paths.queue / SHARED_GROUP_FILE
    atomic_write(setting, f"{group}\n", durable=True)
    _give(os.fspath(setting), gid, 0o640)  # the setting itself: only its owner may change it
    return gid


def _give(path: str, gid: int, mode: int) -> None:
    if stat.S_ISLNK(os.lstat(path).st_mode):
        return
    os.chown(path, -1, gid)
    os.chmod(path, mode)
