"""Turning records into text: the counts line, the status table, ``show``, JSON, the progress bar
of ``submit --wait`` and the redraw loop of ``status --watch``. Only the launcher prints."""
from __future__ import annotations

import json
import os
import shlex
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from expq.launcher.report import Snapshot, Waiting

__all__ = ["duration", "counts_line", "table", "status_text", "show_text", "to_json",
           "progress_line", "waiting_text", "watch", "STATES"]

STATES = ("pending", "running", "done", "failed", "cancelled")
CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear screen
# Table columns: header -> widest cell; a longer cell is cut with "…". NGPU, GPUS, SLURM and TAGS
# appear only when some row has a value.
_COLUMNS: dict[str, int] = {"ID": 12, "EXP/NAME": 40, "STATE": 9, "REASON": 40, "NGPU": 4, "GPUS": 16, "GMEM": 14, "ATT": 3,
                            "TIME": 8, "EXIT": 7, "HOST": 20, "SLURM": 16, "TAGS": 24, "COMMAND": 100_000}
_OPTIONAL = ("NGPU", "GPUS", "GMEM", "SLURM", "TAGS")
# When the table is wider than the terminal, these steps run in order until it fits: (column, width to
# narrow it to) or (column, None) to leave it out. The command gives way first; the reason, which
# says why a job waits or failed, is cut last. Then any room left goes back (``_GIVE_BACK``).
_NARROWING: tuple[tuple[str, int | None], ...] = (
    ("COMMAND", 20), ("ATT", None), ("GMEM", None), ("TAGS", 12), ("HOST", 10), ("SLURM", 8), ("GPUS", 8), ("HOST", None),
    ("SLURM", None), ("TAGS", None),
    ("EXP/NAME", 24), ("REASON", 24), ("COMMAND", 8), ("EXP/NAME", 16), ("REASON", 16), ("COMMAND", None),
    ("EXP/NAME", 12), ("REASON", 12))
_GIVE_BACK = ("REASON", "EXP/NAME", "COMMAND", "GPUS", "HOST", "SLURM")


def _command_cell(command: list[str]) -> str:
    """The command on one line, its program by name only (``/long/venv/bin/python -m expq.executor
    mod.fn`` shows as ``python -m expq.executor mod.fn``): the table is narrow, ``show`` has it all."""
    words = [os.path.basename(command[0]) or command[0], *command[1:]] if command else []
    return " ".join(shlex.join(words).split())


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


def counts_line(counts: dict[str, int], queue_total: int | None = None) -> str:
    """``pending 3  running 1 ...  (total 9)``; with ``queue_total``, the counts are of the jobs a filter
    matched, and the line says so: ``(4 matching of 9 jobs)``."""
    total = sum(counts.values())
    tail = f"(total {total:,})" if queue_total is None else f"({total:,} matching of {queue_total:,} jobs)"
    return "  ".join(f"{state} {counts.get(state, 0):,}" for state in STATES) + f"  {tail}"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def _requested(rec: dict[str, Any]) -> str:
    return str(rec["gpus_requested"]) if rec.get("gpus_requested") else "-"


def _used(rec: dict[str, Any]) -> str:
    return ",".join(str(g) for g in rec["gpus"]) if rec["gpus"] else "-"


def _gpu_use(rec: dict[str, Any]) -> str:
    """``7.1 GiB 97%``: what a running job's processes hold on its GPUs, and their utilisation."""
    held, util = rec.get("gpu_mem_bytes"), rec.get("gpu_util")
    if held is None:
        return "-"
    from expq.queue.spec import format_size

    return format_size(held) + (f" {util}%" if util is not None else "")


def _exit(rec: dict[str, Any]) -> str:
    if rec["signal"]:
        return str(rec["signal"])
    return "-" if rec["exit_code"] is None else str(rec["exit_code"])


def _cells(rec: dict[str, Any]) -> dict[str, str]:
    return {"ID": str(rec["id"]), "EXP/NAME": f"{rec['experiment']}/{rec['name']}", "STATE": rec["state"],
            "REASON": " ".join((rec["reason"] or "-").split()), "NGPU": _requested(rec), "GPUS": _used(rec), "GMEM": _gpu_use(rec),
            "ATT": str(rec["attempts"]), "TIME": duration(rec["elapsed"]), "EXIT": _exit(rec),
            "HOST": rec["host"] or "-", "SLURM": rec.get("slurm_job") or "-",
            "TAGS": ",".join(rec.get("tags") or []) or "-", "COMMAND": _command_cell(rec["command"])}


def _fit(natural: dict[str, int], width: int) -> dict[str, int]:
    """Column widths that make the table at most ``width`` wide, when narrowing can (see ``_NARROWING``)."""
    widths = dict(natural)

    def excess() -> int:
        return sum(widths.values()) + 2 * (len(widths) - 1) - width

    for column, narrow_to in _NARROWING:
        if excess() <= 0:
            break
        if column not in widths:
            continue
        if narrow_to is None:
            del widths[column]
        else:
            widths[column] = max(min(widths[column], max(narrow_to, len(column))), widths[column] - excess())
    for column in _GIVE_BACK:
        if column in widths and excess() < 0:
            widths[column] = min(natural[column], widths[column] - excess())
    return widths


def table(records: Sequence[dict[str, Any]], width: int) -> str:
    """The job table, at most ``width`` characters wide: long cells are cut, and when the terminal is
    narrow the command gives way first (see ``_NARROWING``); a last resort cuts every line.

    NGPU is the number of GPUs a job asks for, GPUS the ids it ran on; both, and SLURM (the array task
    that ran the job, e.g. ``123_4``), appear only when some row has one.
    """
    rows = [_cells(rec) for rec in records]
    names = [c for c in _COLUMNS if c not in _OPTIONAL or any(row[c] != "-" for row in rows)]
    widths = _fit({c: min(max([len(c)] + [len(row[c]) for row in rows]), _COLUMNS[c]) for c in names}, width)
    lines = []
    for row in [{c: c for c in names}] + rows:
        cells = [_cut(row[c], widths[c]).ljust(widths[c]) for c in widths]
        lines.append(_cut("  ".join(cells).rstrip(), width))
    return "\n".join(lines) + "\n"


def status_text(snapshot: Snapshot, width: int) -> str:
    """Counts, then the table, then what was left out."""
    queue_total = sum(snapshot.queue_counts.values()) if snapshot.filtered else None
    out = [counts_line(snapshot.counts, queue_total) + "\n"]
    if snapshot.jobs:
        out.append("\n" + table(snapshot.jobs, width))
    if snapshot.hidden:
        out.append(f"({snapshot.hidden:,} more not shown; --all lists every job, --state filters)\n")
    return "".join(out)


def to_json(data: Any) -> str:
    return json.dumps(data, indent=2) + "\n"


def show_text(details: dict[str, Any]) -> str:
    """``expq show``: the job as readable YAML (the same content as ``--json``)."""
    import yaml  # only this command needs it

    job = details["job"]
    summary = {k: job.get(k) for k in ("id", "state", "experiment", "name", "reason", "queue_position", "attempts",
                                       "exit_code", "signal", "host", "slurm_job", "gpus", "gpu_mem_bytes",
                                       "gpu_util", "peak_gpu_mem_bytes", "tags", "note", "warnings")
               if job.get(k) not in (None, "", [])}
    summary["command"] = shlex.join(job["command"])
    if job["elapsed"] is not None:
        summary["elapsed"] = duration(job["elapsed"])
    spec = {k: v for k, v in details["spec"].items()
            if k not in ("version", "config", "id", "experiment", "name", "command")}
    sections = [("job", summary), ("spec", _clocks(spec)), ("config", details["spec"]["config"]),
                ("paths", details["paths"]), ("attempts", [_clocks(a) for a in details["attempts"]]),
                ("result", _clocks(details["result"]))]
    if details.get("earlier_result") is not None:
        sections.append(("earlier_result", _clocks(details["earlier_result"])))
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


def progress_line(done: int, failed: int, cancelled: int, total: int, width: int = 30, waiting: str = "") -> str:
    """``[###---] 2/4 ended (2 done); 2 pending: no live worker``: the bar, then what the rest do."""
    ended = done + failed + cancelled
    filled = width * ended // total if total else width
    bar = "#" * filled + "-" * (width - filled)
    extra = "".join(f", {n:,} {what}" for n, what in ((failed, "failed"), (cancelled, "cancelled")) if n)
    return f"[{bar}] {ended:,}/{total:,} ended ({done:,} done{extra})" + (f"; {waiting}" if waiting else "")


def waiting_text(waiting: Waiting) -> str:
    """``1 running, 3 pending: no live worker``; the reason is the one ``status`` gives the next job."""
    parts = []
    if waiting.running:
        parts.append(f"{waiting.running:,} running")
    if waiting.pending:
        parts.append(f"{waiting.pending:,} pending" + (f": {waiting.reason}" if waiting.reason else ""))
    if waiting.gone:
        parts.append(f"{len(waiting.gone):,} no longer in the queue ({', '.join(map(str, waiting.gone[:5]))}"
                     f"{', ...' if len(waiting.gone) > 5 else ''})")
    return ", ".join(parts)
