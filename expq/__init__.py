"""expq: a filesystem job queue for experiments, and the API that runs inside each job.

The experiment API is re-exported lazily (PEP 562), so ``import expq`` stays cheap for the CLI.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["Experiment", "get_experiment", "open", "createExperiment", "getExperiment",
           "StoredRun", "StoredExperiment"]
__version__ = "0.1.0"

_LAZY = {
    "Experiment": ("expq.experiment", "Experiment"),
    "get_experiment": ("expq.experiment", "get_experiment"),
    "open": ("expq.experiment", "open_path"),
    "createExperiment": ("expq.experiment", "createExperiment"),
    "getExperiment": ("expq.experiment", "getExperiment"),
    "StoredRun": ("expq.experiment", "StoredRun"),
    "StoredExperiment": ("expq.experiment", "StoredExperiment"),
}

if TYPE_CHECKING:
    from expq.experiment import Experiment, StoredExperiment, StoredRun, createExperiment, get_experiment, getExperiment
    from expq.experiment import open_path as open  # noqa: A001


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        value = getattr(importlib.import_module(module), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'expq' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
