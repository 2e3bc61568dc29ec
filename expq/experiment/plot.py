"""Drawing metrics of several runs on one axis, with matplotlib's object API and the Agg canvas.

No ``pyplot``: it would pick a GUI backend and keep figures alive in its global registry; a bare
``Figure`` with an Agg canvas draws to a file in any process, with or without a display.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from expq.errors import InputError, NotFound

if TYPE_CHECKING:
    from expq.experiment.reading import StoredRun

__all__ = ["plot_runs"]


def plot_runs(runs: Sequence[StoredRun], metrics: Sequence[str], output: Path, title: str | None = None) -> Path:
    """Draw each metric of each run (value against step) on one axis; write ``output``; return it.

    Raises:
        InputError: no metric named.
        NotFound: none of the runs logged any of the metrics.
    """
    if not metrics:
        raise InputError("name at least one metric to plot")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8, 5), dpi=100)
    FigureCanvasAgg(figure)
    axis = figure.add_subplot()
    lines = 0
    for run in runs:
        available = set(run.metrics)
        for metric in metrics:
            if metric not in available:
                continue
            points = run.load_scalar(metric)
            label = run.name if len(metrics) == 1 else f"{run.name} {metric}"
            axis.plot(points["step"], points["value"], label=label)
            lines += 1
    if not lines:
        raise NotFound("metric", f"{', '.join(metrics)} (in {len(runs)} runs)")
    axis.set_xlabel("step")
    axis.set_ylabel(metrics[0] if len(metrics) == 1 else "value")
    if title:
        axis.set_title(title)
    axis.grid(True, alpha=0.3)
    axis.legend(fontsize="small")
    figure.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    fmt = output.suffix.lstrip(".").lower() or "png"
    figure.savefig(output, format=fmt)
    return output
