"""``expq init``: create a root (private to its user), or hand one to a group of colleagues."""
from __future__ import annotations

import argparse
import sys

__all__ = ["register", "run"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "init", help="create the root (private), or share it with a group",
        description="Create the root's queue, owner-only (folders 0700, files 0600), which any command "
                    "that writes does anyway. With --shared-group, hand the root to a group: its members may "
                    "submit, run and read each other's jobs (and so run commands as each other's workers).")
    p.add_argument("--shared-group", metavar="GROUP", help="share the root with this group (setgid, group modes)")


def run(args: argparse.Namespace) -> int:
    from expq.queue.sharing import share_root
    from expq.queue.store import JobQueue

    queue = JobQueue(args.root)
    if args.shared_group is None:
        queue.create()
        sys.stdout.write(f"{queue.root}\n")
        return 0
    share_root(queue, args.shared_group)
    sys.stdout.write(f"{queue.root} (shared with group {args.shared_group})\n")
    return 0
