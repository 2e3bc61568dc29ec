"""The runs table: one row per run, so comparing a sweep is one call, in the terminal or the dashboard.

Columns: ``run``, ``state``, ``config.<dotted key>`` for every config value of any run, then
``<metric>.last`` and ``<metric>.best`` for every metric of any run, then ``duration``, ``result``
(the value the run returned, when it is small and stored inline) and ``tags`` when a run has them.
``best`` is the minimum, or the maximum for metrics named in ``maximize``; NaN points are ignored
for ``best``. A run lacking a column has None there.

Rows come in natural order (``2`` before ``10``). Config keys with one value across every run are
``constant``: kept in the rows (``rows`` are data), but shown once above the text table instead of
as a column, since a column that never varies says nothing about the comparison.
"""
from __future__ import annotations

import csv
import io
import math
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from expq.errors import InputError
from expq.experiment.config import flatten

if TYPE_CHECKING:
    from expq.experiment.reading import StoredRun

__all__ = ["RunsTable", "runs_table", "natural_key", "value_key", "group_rows", "run_row", "parse_filter", "cell_text"]

_NUMBER = re.compile(r"(\d+(?:\.\d+)?)")
_CELL_MAX = 28  # a longer cell is cut with '…' in the text table (the CSV keeps it whole)


def natural_key(text: Any) -> tuple[tuple[int, Any], ...]:
    """Sort key that orders numbers inside names by value: ``2-a`` before ``10-a``, ``lr=0.02`` before ``lr=0.1``."""
    parts = _NUMBER.split(str(text))
    return tuple((1, float(p)) if i % 2 else (0, p) for i, p in enumerate(parts) if p)


def value_key(value: Any) -> tuple[int, Any]:
    """Sort key for a cell: None last, numbers by value, the rest naturally."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return (2, 0)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return (0, value)
    return (1, natural_key(value))


@dataclass
class RunsTable:
    """Rows as dicts sharing ``columns``; ``str()`` renders an aligned text table."""

    columns: list[str]
    rows: list[dict[str, Any]] = field(default_factory=list)
    constant: dict[str, Any] = field(default_factory=dict)  # ``config.<key>`` -> the one value all runs share

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, name: str) -> list[Any]:
        return [row.get(name) for row in self.rows]

    @property
    def shown_columns(self) -> list[str]:
        """The columns worth a column: every one but the constant config keys."""
        return [c for c in self.columns if c not in self.constant]

    def sorted_by(self, column: str, descending: bool = False) -> RunsTable:
        """A copy sorted by ``column`` (missing values last either way).

        Raises:
            InputError: no such column.
        """
        if column not in self.columns:
            raise InputError(f"no column {column!r} to sort by (columns: {', '.join(self.columns)})")
        present = [r for r in self.rows if value_key(r.get(column))[0] != 2]
        missing = [r for r in self.rows if value_key(r.get(column))[0] == 2]
        present.sort(key=lambda r: value_key(r.get(column)), reverse=descending)
        return RunsTable(list(self.columns), present + missing, dict(self.constant))

    def where(self, conditions: dict[str, str]) -> RunsTable:
        """A copy with only the rows whose ``KEY`` (a column, or a config key without ``config.``) shows ``VALUE``.

        Raises:
            InputError: a key that is no column.
        """
        resolved = {}
        for key, wanted in conditions.items():
            column = key if key in self.columns else f"config.{key}"
            if column not in self.columns:
                raise InputError(f"cannot filter on {key!r}: no such column or config key")
            resolved[column] = wanted
        rows = [r for r in self.rows if all(_matches(r.get(c), v) for c, v in resolved.items())]
        return RunsTable(list(self.columns), rows, _constants(self.columns, rows))

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=self.columns, lineterminator="\n", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(self.rows)
        return out.getvalue()

    def render(self, width: int | None = None) -> str:
        """The text table: constants on one line above, then the varying columns, cut to ``width``."""
        lines = []
        if self.constant:
            shared = ", ".join(f"{k.removeprefix('config.')}={cell_text(v)}" for k, v in self.constant.items())
            lines.append(f"same in every run: {shared}")
        columns = self.shown_columns
        cells = [columns] + [[_shown(c, row.get(c)) for c in columns] for row in self.rows]
        widths = [max(len(line[i]) for line in cells) for i in range(len(columns))]
        keep = len(columns)
        if width is not None:  # drop trailing columns that do not fit, and say so
            used, keep = 0, 0
            for w in widths:
                if keep and used + 2 + w > width:
                    break
                used += (2 if keep else 0) + w
                keep += 1
        lines += ["  ".join(v.ljust(w) for v, w in zip(line[:keep], widths)).rstrip() for line in cells]
        if keep < len(columns):
            lines.append(f"({len(columns) - keep} more columns: {', '.join(columns[keep:])}; see --csv)")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


def cell_text(value: Any) -> str:
    """How one value reads in a table: ``-`` for nothing, 6 significant digits for floats."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (list, tuple)):
        return ",".join(cell_text(v) for v in value)
    return str(value)


def _shown(column: str, value: Any) -> str:
    if column == "run":
        return cell_text(value)  # never cut: it is what names the row
    if column == "duration" and isinstance(value, (int, float)):
        return _duration(float(value))
    return _cut(cell_text(value))


def _duration(seconds: float) -> str:
    """``0.8s``, ``42.0s``, ``3m12s``, ``2h05m``: a column of durations reads at a glance."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    whole = int(seconds)
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def _cut(text: str) -> str:
    return text if len(text) <= _CELL_MAX else text[: _CELL_MAX - 1] + "…"


def _matches(value: Any, wanted: str) -> bool:
    if cell_text(value) == wanted or str(value) == wanted:
        return True
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return float(wanted) == float(value)
        except ValueError:
            return False
    return False


def parse_filter(text: str) -> tuple[str, str]:
    """``KEY=VALUE`` as given to ``--filter``.

    Raises:
        InputError: no ``=`` or an empty key.
    """
    key, eq, value = text.partition("=")
    if not eq or not key.strip():
        raise InputError(f"invalid filter {text!r}: expected KEY=VALUE, e.g. lr=0.1")
    return key.strip(), value.strip()


def _constants(columns: Sequence[str], rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Config columns present in every row with one value (only when there are at least two rows)."""
    if len(rows) < 2:
        return {}
    out = {}
    for column in columns:
        if not column.startswith("config."):
            continue
        values = [row.get(column, _MISSING) for row in rows]
        first = values[0]
        if first is not _MISSING and all(_same(v, first) for v in values):
            out[column] = first
    return out


_MISSING = object()


def _same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def run_row(run: StoredRun, metrics: Callable[[StoredRun, str], tuple[float | None, float | None]]) -> dict[str, Any]:
    """One row without metrics: name, state, config, duration, result, tags; ``metrics`` gives (last, best)."""
    row: dict[str, Any] = {"run": run.name, "state": run.state}
    for key, value in flatten(run.config).items():
        row[f"config.{key}"] = value
    for metric in run.metrics:
        row[f"{metric}.last"], row[f"{metric}.best"] = metrics(run, metric)
    job = run.job_result or {}
    duration = job.get("duration", run.meta.get("duration_s"))
    row["duration"] = float(duration) if isinstance(duration, (int, float)) and not isinstance(duration, bool) else None
    result = run.meta.get("result")
    row["result"] = result if isinstance(result, (int, float, str, bool)) or result is None else _short(result)
    tags = _tags(run)
    if tags:
        row["tags"] = tags
    return row


def _tags(run: StoredRun) -> list[str]:
    """Labels from the job's spec (``job.json``), run.json and ``expq tag`` (``labels.json``)."""
    from expq._fs import read_json_object
    from expq.experiment.tree import JOB_JSON, LABELS_JSON

    found: dict[str, None] = {}
    for source in ((read_json_object(run.path / JOB_JSON) or {}).get("tags"), run.meta.get("tags"),
                   (read_json_object(run.path / LABELS_JSON) or {}).get("tags")):
        if isinstance(source, list):
            found.update((str(tag), None) for tag in source)
    return list(found)


def _short(value: Any) -> str:
    import json

    try:
        return json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        return str(value)


def _last_and_best(maximize: Sequence[str]) -> Callable[[StoredRun, str], tuple[float | None, float | None]]:
    def read(run: StoredRun, metric: str) -> tuple[float | None, float | None]:
        values = [float(v) for v in run.load_scalar(metric)["value"]]
        finite = [v for v in values if not math.isnan(v)]
        pick = max if metric in maximize else min
        return (values[-1] if values else None), (pick(finite) if finite else None)
    return read


def build_table(rows: Iterable[dict[str, Any]]) -> RunsTable:
    """Columns in the documented order from rows that carry any subset of them; rows in natural order."""
    rows = sorted(rows, key=lambda r: natural_key(r["run"]))
    config_keys: dict[str, None] = {}
    metric_names: dict[str, None] = {}
    tail: dict[str, None] = {}
    for row in rows:
        for key in row:
            if key.startswith("config."):
                config_keys.setdefault(key)
            elif key.endswith((".last", ".best")):
                metric_names.setdefault(key.rsplit(".", 1)[0])
            elif key not in ("run", "state"):
                tail.setdefault(key)
    metric_columns = [f"{m}.{kind}" for m in metric_names for kind in ("last", "best")]
    extra = [c for c in ("duration", "result", "tags") if c in tail and any(r.get(c) is not None for r in rows)]
    columns = ["run", "state", *config_keys, *metric_columns, *extra]
    return RunsTable(columns, rows, _constants(columns, rows))


def runs_table(runs: Sequence[StoredRun], maximize: Sequence[str] = ()) -> RunsTable:
    """Build the table for ``runs`` (reads each metric file once)."""
    read = _last_and_best(maximize)
    return build_table(run_row(run, read) for run in runs)


def group_rows(table: RunsTable, key: str) -> RunsTable:
    """One row per value of config ``key``: the run count, and mean/min/max of each metric's last value.

    Raises:
        InputError: ``key`` is no config key of these runs.
    """
    column = key if key.startswith("config.") else f"config.{key}"
    if column not in table.columns:
        keys = ", ".join(c.removeprefix("config.") for c in table.columns if c.startswith("config."))
        raise InputError(f"cannot group by {key!r}: no run has that config key (keys: {keys or 'none'})")
    groups: dict[Any, list[dict[str, Any]]] = {}
    for row in table.rows:
        groups.setdefault(_hashable(row.get(column)), []).append(row)
    metrics = [c.removesuffix(".last") for c in table.columns if c.endswith(".last")]
    rows = []
    for value in sorted(groups, key=value_key):
        members = groups[value]
        out: dict[str, Any] = {column: value, "runs": len(members)}
        for metric in metrics:
            found = [float(v) for r in members if isinstance(v := r.get(f"{metric}.last"), (int, float))
                     and not math.isnan(float(v))]
            out[f"{metric}.mean"] = sum(found) / len(found) if found else None
            out[f"{metric}.min"] = min(found) if found else None
            out[f"{metric}.max"] = max(found) if found else None
        states: dict[str, int] = {}
        for r in members:
            states[str(r.get("state"))] = states.get(str(r.get("state")), 0) + 1
        out["states"] = ", ".join(f"{n} {s}" for s, n in states.items())
        rows.append(out)
    columns = [column, "runs", *(f"{m}.{s}" for m in metrics for s in ("mean", "min", "max")), "states"]
    return RunsTable(columns, rows)


def _hashable(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value
