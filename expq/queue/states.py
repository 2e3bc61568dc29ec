"""Job states and the one table of transitions allowed between them."""
from __future__ import annotations

from enum import Enum

from expq.errors import InvalidTransition

__all__ = ["State", "TRANSITIONS", "FINISHED", "check_transition"]


class State(str, Enum):
    """A job's state; each state is a directory of the queue."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    def __str__(self) -> str:
        return self.value


FINISHED = frozenset({State.DONE, State.FAILED, State.CANCELLED})

TRANSITIONS: dict[State, frozenset[State]] = {
    # claim; cancel, or a dependency that can no longer succeed
    State.PENDING: frozenset({State.RUNNING, State.CANCELLED}),
    # the job ended; or it is requeued (preemption, lost worker with retries left)
    State.RUNNING: frozenset({State.DONE, State.FAILED, State.CANCELLED, State.PENDING}),
    State.DONE: frozenset(),
    # `expq retry`
    State.FAILED: frozenset({State.PENDING}),
    State.CANCELLED: frozenset({State.PENDING}),
}


def check_transition(job_id: int, current: State, target: State) -> None:
    """Raise unless the table allows ``current -> target``.

    Raises:
        InvalidTransition: naming the job and both states.
    """
    if target not in TRANSITIONS[current]:
        raise InvalidTransition(job_id, current.value, target.value)
