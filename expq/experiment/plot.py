"""Drawing metrics of several runs, with matplotlib's object API and the Agg canvas.

No ``pyplot``: it would pick a GUI backend and keep figures alive in its global registry; a bare
``Figure`` with an Agg canvas draws to a file in any process, with or without a display.

One axis per metric (its name on the y axis), runs in natural order, one colour per run (or per
group) that stays the same across the axes, a line style per metric, and the legend outside the
axes so it never covers data. ``group_by`` draws one line per value of a config key: the mean
across that group's runs at each step, and a band from their minimum to their maximum.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from expq.errors import InputError, NotFound
from expq.experiment.config import flatten
from expq.experiment.table import cell_text, natural_key, value_key

if TYPE_CHECKING:
    import numpy

    from expq.experiment.reading import StoredRun

__all__ = ["plot_runs", "palette", "LINE_STYLES", "group_series"]

LINE_STYLES: tuple[Any, ...] = ("-", "--", ":", "-.")
# tab10 first (best told apart); past 10 lines, 30 more from tab20/tab20b/tab20c, each the one farthest
# (in RGB) from all before it, so 20 lines are no two closer than 60. The dashboard uses the same list
# (expq/ui/static/app.js).
_TAB10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"]
_MANY = _TAB10 + [
    "#9edae5", "#dbdb8d", "#393b79", "#d6616b", "#74c476", "#6baed6", "#f7b6d2", "#c49c94", "#fdae6b", "#a1d99b",
    "#637939", "#c7e9c0", "#8ca252", "#5254a3", "#9e9ac8", "#b5cf6b", "#a55194", "#dadaeb", "#e6550d", "#ff9896",
    "#7b4173", "#fd8d3c", "#c5b0d5", "#6b6ecf", "#636363", "#fdd0a2", "#31a354", "#969696", "#bd9e39", "#ad494a"]


_FEW = 20  # series this short get markers, so a single point (a final validation) is visible


def _marker(points: int) -> str | None:
    return "o" if points <= _FEW else None


def palette(count: int) -> list[str]:
    """``count`` colours that can be told apart: tab10 up to 10, then 30 more (see ``_MANY``), then repeated."""
    return [_MANY[i % len(_MANY)] for i in range(count)]


def group_series(series: Sequence[numpy.ndarray]) -> tuple[numpy.ndarray, numpy.ndarray, numpy.ndarray, numpy.ndarray]:
    """Steps, mean, min and max across several runs' points of one metric (NaNs ignored; a step
    counts the runs that logged it)."""
    import numpy as np

    steps = np.concatenate([s["step"] for s in series]) if series else np.zeros(0, dtype=np.int64)
    values = np.concatenate([s["value"] for s in series]) if series else np.zeros(0)
    keep = ~np.isnan(values)
    steps, values = steps[keep], values[keep]
    unique, inverse = np.unique(steps, return_inverse=True)
    total = np.zeros(len(unique))
    count = np.zeros(len(unique))
    low = np.full(len(unique), np.inf)
    high = np.full(len(unique), -np.inf)
    np.add.at(total, inverse, values)
    np.add.at(count, inverse, 1)
    np.minimum.at(low, inverse, values)
    np.maximum.at(high, inverse, values)
    return unique, total / np.maximum(count, 1), low, high


def plot_runs(runs: Sequence[StoredRun], metrics: Sequence[str], output: Path, title: str | None = None,
              group_by: str | None = None, log_y: bool = False) -> Path:
    """Draw each metric of each run (value against step), one axis per metric; write ``output``; return it.

    Raises:
        InputError: no metric named, or ``group_by`` is no config key of these runs.
        NotFound: none of the runs logged any of the metrics.
    """
    if not metrics:
        raise InputError("name at least one metric to plot")
    runs = sorted(runs, key=lambda r: natural_key(r.name))
    drawn = [m for m in dict.fromkeys(metrics) if any(m in r.metrics for r in runs)]
    if not drawn:
        raise NotFound("metric", f"{', '.join(metrics)} (in {len(runs)} runs)")
    lines = _groups(runs, group_by) if group_by else [(run.name, [run]) for run in runs]
    lines = [(label, members) for label, members in lines if any(m in r.metrics for r in members for m in drawn)]
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    figure = Figure(figsize=(10, 1.2 + 3.0 * len(drawn)), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(drawn), 1, sharex=True, squeeze=False)[:, 0]
    colours = palette(len(lines))
    for index, (axis, metric) in enumerate(zip(axes, drawn)):
        style = LINE_STYLES[index % len(LINE_STYLES)]
        for colour, (_, members) in zip(colours, lines):
            series = [r.load_scalar(metric) for r in members if metric in r.metrics]
            if not series:
                continue
            if group_by:
                steps, mean, low, high = group_series(series)
                axis.plot(steps, mean, color=colour, linestyle=style, linewidth=1.5, marker=_marker(len(steps)))
                if len(steps) > _FEW:
                    axis.fill_between(steps, low, high, color=colour, alpha=0.18, linewidth=0)
                else:  # a band between a few points is hardly visible: error bars instead
                    axis.errorbar(steps, mean, yerr=[mean - low, high - mean], color=colour, linestyle="none",
                                  capsize=3)
            else:
                points = series[0]
                axis.plot(points["step"], points["value"], color=colour, linestyle=style, linewidth=1.2,
                          marker=_marker(len(points)))
        axis.set_ylabel(metric)
        if log_y:
            axis.set_yscale("log")
        axis.grid(True, alpha=0.3)
    axes[-1].set_xlabel("step")
    if title:
        axes[0].set_title(title + (f" (mean and min-max by {group_by})" if group_by else ""))
    handles: list[Any] = [Line2D([], [], color=c, linewidth=2, label=label) for c, (label, _) in zip(colours, lines)]
    if len(drawn) > 1:
        handles += [Line2D([], [], color="black", linestyle=LINE_STYLES[i % len(LINE_STYLES)], label=m)
                    for i, m in enumerate(drawn)]
    figure.legend(handles=handles, loc="outside right upper", fontsize="small",
                  title=group_by, ncols=1 if len(handles) <= 30 else 2)
    output.parent.mkdir(parents=True, exist_ok=True)
    fmt = output.suffix.lstrip(".").lower() or "png"
    figure.savefig(output, format=fmt)
    return output


def _groups(runs: Sequence[StoredRun], key: str) -> list[tuple[str, list[StoredRun]]]:
    key = key.removeprefix("config.")
    missing = object()
    groups: dict[Any, list[StoredRun]] = {}
    for run in runs:
        value = flatten(run.config).get(key, missing)
        groups.setdefault(None if value is missing else _hashable(value), []).append(run)
    if list(groups) == [None]:
        raise InputError(f"cannot group by {key!r}: no run has that config key")
    return [(f"{key}={cell_text(value)}", groups[value]) for value in sorted(groups, key=value_key)]


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value
