"""Shell completion (bash and zsh) through argcomplete: commands, options, and job ids and
experiment names read from the root.

Only a completing shell sets ``_ARGCOMPLETE``; otherwise this module does nothing and argcomplete is
never imported, so ``expq --help`` stays fast. Set up once per shell::

    eval "$(register-python-argcomplete expq)"      # bash; zsh: autoload -U bashcompinit && bashcompinit first
"""
from __future__ import annotations

import argparse
import os
from typing import Any

__all__ = ["autocomplete", "job_ids", "experiments"]

_ID_DESTS = ("id", "ids", "after")
_EXPERIMENT_DESTS = ("experiment", "after_experiment")


def _root(parsed_args: argparse.Namespace) -> Any:
    from expq.contract import resolve_root

    return resolve_root(getattr(parsed_args, "root", None))


def job_ids(prefix: str, parsed_args: argparse.Namespace, **_: Any) -> list[str]:
    """The ids of the root's jobs that start with ``prefix`` (listings only, newest last)."""
    from expq.queue.states import State
    from expq.queue.store import JobQueue

    queue = JobQueue(_root(parsed_args))
    if not queue.exists():
        return []
    ids: set[int] = set()
    for state in State:
        ids.update(queue.list_ids(state))
    return [str(job) for job in sorted(ids) if str(job).startswith(prefix)]


def experiments(prefix: str, parsed_args: argparse.Namespace, **_: Any) -> list[str]:
    """The experiment folders under the root that start with ``prefix``."""
    try:
        names = os.listdir(_root(parsed_args) / "experiments")
    except OSError:
        return []
    return sorted(n for n in names if n.startswith(prefix) and not n.startswith("."))


def _attach(parser: argparse.ArgumentParser) -> None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                _attach(sub)
        elif action.dest in _ID_DESTS:
            action.completer = job_ids  # type: ignore[attr-defined]
        elif action.dest in _EXPERIMENT_DESTS:
            action.completer = experiments  # type: ignore[attr-defined]


def autocomplete(parser: argparse.ArgumentParser) -> None:
    """Answer a completing shell and exit; a no-op (no import) otherwise."""
    if "_ARGCOMPLETE" not in os.environ:
        return
    import argcomplete

    _attach(parser)
    argcomplete.autocomplete(parser)
