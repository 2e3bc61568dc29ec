"""The Python futures API over the queue: ``Executor`` submits functions as jobs, ``Job`` is their future.

Names are imported on first use, so ``python -m expq.executor`` (the child side) loads only what a
job needs. cloudpickle, the ``executor`` extra, is imported only to submit a call or read a result.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

__all__ = ["Executor", "Job", "JobError"]

_LAZY = {
    "Executor": "expq.executor.executor",
    "Job": "expq.executor.job",
    "JobError": "expq.executor.errors",
}

if TYPE_CHECKING:
    from expq.executor.errors import JobError
    from expq.executor.executor import Executor
    from expq.executor.job import Job


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'expq.executor' has no attribute {name!r}")
