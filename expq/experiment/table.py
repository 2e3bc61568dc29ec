"""The runs table: one row per run, so comparing a sweep is one call.

Columns: ``run``, ``state``, ``config.<dotted key>`` for every config value of any run, then
``<metric>.last`` and ``<metric>.best`` for every metric of any run. ``best`` is the minimum,
or the maximum for metrics named in ``maximize``; NaN points are ignored for ``best``.
A run lacking a column has None there.
"""
from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Sequence

from expq.experiment.config import flatten

if TYPE_CHECKING:
    from expq.experiment.reading import StoredRun

__all__ = ["RunsTable", "runs_table"]


@dataclass
class RunsTable:
    """Rows as dicts sharing ``columns``; ``str()`` renders an aligned text table."""

    columns: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, name: str) -> list[Any]:
        return [row.get(name) for row in self.rows]

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=self.columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(self.rows)
        return out.getvalue()

    def __str__(self) -> str:
        cells = [self.columns] + [[_cell(row.get(c)) for c in self.columns] for row in self.rows]
        widths = [max(len(line[i]) for line in cells) for i in range(len(self.columns))]
        return "\n".join("  ".join(v.ljust(w) for v, w in zip(line, widths)).rstrip() for line in cells)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def runs_table(runs: Sequence[StoredRun], maximize: Sequence[str] = ()) -> RunsTable:
    """Build the table for ``runs`` (reads each metric file once)."""
    rows: list[dict[str, Any]] = []
    config_keys: dict[str, None] = {}
    metric_names: dict[str, None] = {}
    for run in runs:
        row: dict[str, Any] = {"run": run.name, "state": run.state}
        for key, value in flatten(run.config).items():
            config_keys.setdefault(f"config.{key}")
            row[f"config.{key}"] = value
        for metric in run.metrics:
            metric_names.setdefault(metric)
            points = run.load_scalar(metric)
            values = [float(v) for v in points["value"]]
            row[f"{metric}.last"] = values[-1] if values else None
            finite = [v for v in values if not math.isnan(v)]
            pick = max if metric in maximize else min
            row[f"{metric}.best"] = pick(finite) if finite else None
        rows.append(row)
    metric_columns = [f"{m}.{kind}" for m in metric_names for kind in ("last", "best")]
    return RunsTable(["run", "state", *config_keys, *metric_columns], rows)
