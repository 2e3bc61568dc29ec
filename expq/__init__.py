"""expq: a filesystem job queue for experiments, and the API that runs inside each job.

The experiment API is re-exported lazily (PEP 562), so ``import expq`` stays cheap for the CLI.
``expq.open(path)`` reads a stored run or experiment; it is deliberately left out of ``__all__``
so that ``from expq import *`` never shadows the builtin ``open``.
"""
from __future__ import annotations

TYPE_CHECKING = False  # not typing's: importing typing costs every command several ms (mypy reads the name)

__all__ = ["Experiment", "get_experiment", "createExperiment", "getExperiment",
           "StoredRun", "StoredExperiment", "Executor", "Job", "JobError"]
__version__ = "0.1.0"

# public name -> (module, attribute): imported on first use
_LAZY = {
    "Experiment": ("expq.experiment", "Experiment"),
    "get_experiment": ("expq.experiment", "get_experiment"),
    "open": ("expq.experiment", "open_path"),
    "createExperiment": ("expq.experiment", "createExperiment"),
    "getExperiment": ("expq.experiment", "getExperiment"),
    "StoredRun": ("expq.experiment", "StoredRun"),
    "StoredExperiment": ("expq.experiment", "StoredExperiment"),
    "Executor": ("expq.executor", "Executor"),
    "Job": ("expq.executor", "Job"),
    "JobError": ("expq.executor", "JobError"),
}

if TYPE_CHECKING:
    from expq.executor import Executor, Job, JobError
    from expq.experiment import Experiment, StoredExperiment, StoredRun, createExperiment, get_experiment, getExperiment
    from expq.experiment import open_path as open  # noqa: A001, F401 -- expq.open, kept out of __all__


def __getattr__(name: str) -> object:
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        value = getattr(importlib.import_module(module), attribute)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'expq' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public surface only: the lazy names and the version, not this module's own imports."""
    return sorted(set(_LAZY) | set(__all__) | {"__version__"})

