"""The in-process experiment API: save objects, log metrics, inject config, run commands.

Importing this package imports no numpy and no matplotlib; savers and plots import them when
an object of their type is saved or a plot is drawn. See ``tree`` for the on-disk layout.
"""
from __future__ import annotations

from typing import Any

from expq.experiment.active import get_experiment
from expq.experiment.experiment import Experiment
from expq.experiment.reading import StoredExperiment, StoredRun, open_path

__all__ = ["Experiment", "get_experiment", "open_path", "StoredRun", "StoredExperiment",
           "createExperiment", "getExperiment"]


def createExperiment(name: str | None = None, *args: Any, **kwargs: Any) -> Experiment:  # noqa: N802
    """Alias of ``Experiment(...)`` for users of the old ExperimentManager."""
    return Experiment(name, *args, **kwargs)


def getExperiment(name: str | None = None) -> Experiment:  # noqa: N802
    """Alias of ``get_experiment()`` for users of the old ExperimentManager."""
    return get_experiment(name)
