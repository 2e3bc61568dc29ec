"""The exceptions of expq; each class carries the exit code the CLI returns for it.

Errors with fields define ``__reduce__``: an error raised in a job or a worker process crosses
process boundaries pickled (futures, multiprocessing), and the default pickling would call the
class with the message alone and fail, or lose the fields.
"""
from __future__ import annotations

__all__ = ["ExpqError", "InputError", "NotFound", "InvalidTransition", "InsecureQueue"]


class ExpqError(Exception):
    """Base of every error expq raises on purpose; ``str()`` is one line for the user."""

    exit_code = 1


class InputError(ExpqError):
    """Bad usage or bad input: a sweep, config, placeholder, option or name the user gave."""

    exit_code = 2


class NotFound(InputError):
    """A job id, experiment or file the user named does not exist."""

    def __init__(self, what: str, value: object) -> None:
        super().__init__(f"no such {what}: {value}")
        self.what = what
        self.value = value

    def __reduce__(self) -> tuple[type[NotFound], tuple[str, object]]:
        return type(self), (self.what, self.value)


class InsecureQueue(InputError):
    """The queue or a spec in it can be written by other users, so running it would run their code."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"refusing {path}: {reason}")
        self.path = path
        self.reason = reason

    def __reduce__(self) -> tuple[type[InsecureQueue], tuple[object, str]]:
        return type(self), (self.path, self.reason)


class InvalidTransition(ExpqError):
    """A job was asked to move between two states that the state table does not connect."""

    def __init__(self, job_id: int, current: str, target: str) -> None:
        super().__init__(f"job {job_id} cannot go from {current} to {target}")
        self.job_id = job_id
        self.current = current
        self.target = target

    def __reduce__(self) -> tuple[type[InvalidTransition], tuple[int, str, str]]:
        return type(self), (self.job_id, self.current, self.target)
