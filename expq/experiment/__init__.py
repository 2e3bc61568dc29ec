"""The in-process experiment API: save objects, log metrics, inject config, run commands.

Importing this package imports no numpy and no matplotlib; savers and plots import them when
an object of their type is saved or a plot is drawn. It imports no queue, worker or launcher
code: inside a job it learns its run directory from the environment only (``expq.contract``).

Modules: ``experiment`` (the ``Experiment`` class), ``run`` (one live run and its run.json),
``active`` (the open experiments, ``get_experiment``), ``env`` (binding to a queued job),
``tree`` (the run directory layout), ``files`` and ``savers`` (saving and loading objects),
``metrics`` (log_scalar), ``capture`` (config injection), ``sources`` (source snapshot and git),
``stdout`` (fd-level output capture), ``logger`` (run.log), ``reading`` (``expq.open``: stored
runs and experiments), ``table`` and ``plot`` (the runs table and metric plots).
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
