"""The ``expq`` console script (and ``python -m expq``): a few lines that run before anything else.

A foreground worker takes its start-up turn here (see ``expq.worker.start_turn``), before the command
line is even imported: whatever runs before the turn, 32 workers launched together on 2 CPUs pay at
once, and the first of them starts its jobs only when all of them are through it.
"""
from __future__ import annotations

import sys

TYPE_CHECKING = False  # not typing's: importing typing here would cost every start several ms
if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["main", "command_word"]


def command_word(argv: Sequence[str]) -> str | None:
    """The first word of a command line that is neither an option nor ``--root``'s value, or None
    (also when ``-h``/``--help`` comes first)."""
    words = iter(argv)
    for word in words:
        if word in ("-h", "--help"):
            return None
        if word == "--root":
            next(words, None)
        elif not word.startswith("-"):
            return word
    return None


def main() -> int:
    """``expq``'s command line (``sys.argv``), run by ``launcher.cli`` once a worker has its turn."""
    words = sys.argv[1:]
    if command_word(words) == "worker" and "--detach" not in words:
        from expq.worker.start_turn import take_turn

        take_turn()  # given back by the worker once its first jobs run, or by the kernel at exit
    from expq.launcher.cli import main as run_command

    return run_command()
