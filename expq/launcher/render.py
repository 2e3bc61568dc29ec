"""Turning records into text: the counts line, the status table, ``show``, JSON, the progress bar
of ``submit --wait`` and the redraw loop of ``status --watch``. Only the launcher prints."""
from __future__ import annotations

import json
import shlex
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from expq.launcher.report import Snapshot
    from expq.queue.store import JobQueue

__all__ = ["terminal_width", "duration", "counts_line", "table", "status_text", "show_text", "to_json",
           "status_json", "progress_line", "watch", "wait_for", "STATES"]

STATES = ("pending", "running", "done", "failed", "cancelled")
CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear screen
_COLUMNS = ("ID", "EXPERIMENT/NAME", "STATE", "REASON", "GPUS", "ATT", "ELAPSED", "EXIT", "HOST", "COMMAND")
_MAX_CELL = {"EXPERIMENT/NAME": 40, "REASON": 40, "HOST": 20, "SLURM": 16}


def terminal_width() -> int:
    return shutil.get_terminal_size((120, 24)).columns


def duration(seconds: float | None) -> str:
    """``4s``, ``3m12s``, ``2h05m``, ``3d04h``: short enough for a table column."""
    if seconds is None:
        return "-"
    s = int(seconds)
    if seconds < 10:
        return f"{seconds:.1f}s"
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    if s < 86400:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 86400}d{s % 86400 // 3600:02d}h"


def counts_line(counts: dict[str, int]) -> str:
    total = sum(counts.values())
    return "  ".join(f"{state} {counts.get(state, 0):,}" for state in STATES) + f"  (total {total:,})"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _gpus(rec: dict[str, Any]) -> str:
    if rec["gpus"]:
        return ",".join(str(g) for g in rec["gpus"])
    return str(rec["gpus_requested"]) if rec["gpus_requested"] else "-"


def _exit(rec: dict[str, Any]) -> str:
    if rec["signal"]:
        return str(rec["signal"])
    return "-" if rec["exit_code"] is None else str(rec["exit_code"])


def _row(rec: dict[str, Any]) -> list[str]:
    return [str(rec["id"]), f"{rec['experiment']}/{rec['name']}", rec["state"], rec["reason"] or "-", _gpus(rec),
            str(rec["attempts"]), duration(rec["elapsed"]), _exit(rec), rec["host"] or "-",
            shlex.join(rec["command"])]


def table(records: Sequence[dict[str, Any]], width: int) -> str:
    """The job table; long cells are cut, and the command gets what is left of the terminal width.

    A SLURM column (the array task that ran the job, e.g. ``123_4``) follows HOST when any row has one.
    """
    rows = [_row(rec) for rec in records]
    columns = list(_COLUMNS)
    if any(rec.get("slurm_job") for rec in records):
        at = columns.index("HOST") + 1
        columns.insert(at, "SLURM")
        for row, rec in zip(rows, records):
            row.insert(at, rec.get("slurm_job") or "-")
    for row in rows:
        for i, column in enumerate(columns):
            if column in _MAX_CELL:
                row[i] = _cut(row[i], _MAX_CELL[column])
    widths = [max([len(column)] + [len(row[i]) for row in rows]) for i, column in enumerate(columns[:-1])]
    command_width = max(width - sum(widths) - 2 * len(widths), 12)
    lines = []
    for row in [columns] + rows:
        cells = [cell.ljust(w) for cell, w in zip(row, widths)] + [_cut(row[-1], command_width)]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines) + "\n"


def status_text(snapshot: Snapshot, width: int) -> str:
    """Counts, then the table, then what was left out."""
    out = [counts_line(snapshot.counts) + "\n"]
    if snapshot.jobs:
        out.append("\n" + table(snapshot.jobs, width))
    if snapshot.hidden:
        out.append(f"({snapshot.hidden:,} more not shown; --all lists every job, --state filters)\n")
    return "".join(out)


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2) + "\n"


def status_json(counts: dict[str, int], jobs: Sequence[dict[str, Any]]) -> str:
    """``status --json``: one compact job per line, so it stays greppable and 100,000 jobs encode in
    C (``indent`` would switch ``json`` to its pure-Python encoder, ten times slower)."""
    compact = json.JSONEncoder(separators=(",", ":")).encode
    lines = ",\n".join(compact(job) for job in jobs)
    return f'{{"version":1,"counts":{compact(counts)},"jobs":[\n{lines}\n]}}\n' if jobs else \
        f'{{"version":1,"counts":{compact(counts)},"jobs":[]}}\n'


def show_text(details: dict[str, Any]) -> str:
    """``expq show``: the job as readable YAML (the same content as ``--json``)."""
    import yaml  # only this command needs it

    job = details["job"]
    summary = {k: job[k] for k in ("id", "state", "experiment", "name", "reason", "attempts", "exit_code", "signal",
                                   "host", "slurm_job", "gpus") if job[k] not in (None, "", [])}
    summary["command"] = shlex.join(job["command"])
    if job["elapsed"] is not None:
        summary["elapsed"] = duration(job["elapsed"])
    spec = {k: v for k, v in details["spec"].items()
            if k not in ("version", "config", "id", "experiment", "name", "command")}
    sections = [("job", summary), ("spec", _clocks(spec)), ("config", details["spec"]["config"]),
                ("paths", details["paths"]), ("attempts", [_clocks(a) for a in details["attempts"]]),
                ("result", _clocks(details["result"]))]
    parts = []
    for title, value in sections:
        if value in (None, {}, []):
            parts.append(f"{title}: {'{}' if value == {} else '[]' if value == [] else 'null'}\n")
            continue
        parts.append(yaml.safe_dump({title: value}, sort_keys=False, default_flow_style=False, allow_unicode=True,
                                    width=10_000))
    return "".join(parts)


def _clocks(record: dict[str, Any] | None) -> dict[str, Any] | None:
    """Timestamps (``*_at`` keys) as local date and time, for people; ``--json`` keeps the numbers."""
    if record is None:
        return None
    return {k: _clock(v) if k.endswith("_at") and isinstance(v, (int, float)) else v for k, v in record.items()}


def _clock(stamp: float) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp)) + f".{int(stamp % 1 * 1000):03d}"


# -- loops that redraw --------------------------------------------------------------------------

def watch(draw: Callable[[], str], interval: float, stream: TextIO, rounds: int | None = None) -> int:
    """Redraw ``draw()`` in place every ``interval`` seconds until Ctrl-C (exit code 0).

    On a terminal each frame replaces the last; into a pipe or file, frames follow each other.
    """
    done = 0
    try:
        while rounds is None or done < rounds:
            text = draw()
            stream.write(CLEAR + text if stream.isatty() else text + "\n")
            stream.flush()
            done += 1
            if rounds is None or done < rounds:
                time.sleep(interval)
    except KeyboardInterrupt:
        stream.write("\n")
    return 0


def progress_line(done: int, failed: int, cancelled: int, total: int, width: int = 30) -> str:
    ended = done + failed + cancelled
    filled = width * ended // total if total else width
    bar = "#" * filled + "-" * (width - filled)
    extra = "".join(f", {n:,} {what}" for n, what in ((failed, "failed"), (cancelled, "cancelled")) if n)
    return f"[{bar}] {ended:,}/{total:,} ended ({done:,} done{extra})"


def wait_for(queue: JobQueue, ids: Sequence[int], stream: TextIO = sys.stderr, interval: float = 0.5) -> int:
    """``submit --wait``: a progress bar on ``stream`` until every job in ``ids`` has ended.

    Returns 0 when all are done, 1 when any failed or was cancelled.
    """
    from expq.launcher.report import finished_ids

    tty = stream.isatty()
    last = ""
    while True:
        ended = finished_ids(queue, ids)
        states = list(ended.values())
        line = progress_line(*(sum(1 for s in states if s.value == name) for name in ("done", "failed", "cancelled")),
                             len(ids))
        if line != last:
            stream.write(f"\r{line}" if tty else f"{line}\n")
            stream.flush()
            last = line
        if len(ended) == len(ids):
            if tty:
                stream.write("\n")
            return 0 if all(s.value == "done" for s in states) else 1
        time.sleep(interval)
