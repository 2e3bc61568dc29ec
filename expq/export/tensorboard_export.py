"""``expq export tensorboard``: runs as TensorBoard event files, appending only what is new.

Layout: ``OUT/<run name>/`` per run (nested runs nested, as TensorBoard shows them), holding
event files with every metric as a scalar (step and wall time kept), the run's flattened config
as an HParams session (so the HParams tab compares runs by config; its metric columns are the
last value of each scalar) and, once the run has ended, the session's status.

Re-running is incremental and safe to interrupt. Each export of a run writes one new event file
(to a hidden temp name, then renamed), and only then records in ``OUT/<run>/.expq-export.json``
how many points of each metric it has exported and which event files it wrote. An event file of
ours that the record does not list is what an interrupted export left; it is removed before the
next export writes the same points again, so nothing is ever shown twice.
"""
from __future__ import annotations

import json
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from expq._fs import atomic_write, read_json_object
from expq.errors import ExpqError, InputError
from expq.experiment import events, tree
from expq.experiment.config import flatten
from expq.experiment.metrics import read_scalar_since
from expq.experiment.reading import StoredRun
from expq.export.source import FAILED_STATES, FINAL_STATES, RunFacts, check_output_folder, run_facts

__all__ = ["export_tensorboard", "TensorBoardExport", "RunExport", "STATE_FILE", "require_tensorboard"]

STATE_FILE = ".expq-export.json"
LOCK_FILE = ".expq-export.lock"
LOCK_TIMEOUT = 120.0
STATE_VERSION = 1
_OURS = ".expq-"  # in the name of every event file this exporter writes


@dataclass
class RunExport:
    """What one export did for one run."""

    name: str
    folder: Path
    points: int = 0
    nonfinite: int = 0
    metrics: list[str] = field(default_factory=list)


@dataclass
class TensorBoardExport:
    """What ``export_tensorboard`` did: per run, and in total."""

    out: Path
    runs: list[RunExport]

    @property
    def points(self) -> int:
        return sum(run.points for run in self.runs)

    @property
    def nonfinite(self) -> int:
        return sum(run.nonfinite for run in self.runs)


def require_tensorboard() -> None:
    """Raises ExpqError naming the extra to install when TensorBoard is missing."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise ExpqError("TensorBoard is not installed: pip install 'expq[tensorboard]'") from None


def export_tensorboard(runs: Sequence[StoredRun], out: Path) -> TensorBoardExport:
    """Write what is new in each of ``runs`` under ``out``; return what was written.

    Raises:
        InputError: ``out`` is a file or not writable, two runs would share a folder, or a
            folder already holds the export of another run.
        ExpqError: TensorBoard is not installed (its protos describe the HParams data), or
            another export into ``out`` holds it for longer than ``LOCK_TIMEOUT``.
    """
    require_tensorboard()
    from filelock import FileLock, Timeout

    _plan(runs, out)  # check before anything is written, the lock file included; again under the lock
    out.mkdir(parents=True, exist_ok=True)
    # One export at a time per folder (`expq tensorboard` re-exports while a user may export by
    # hand): two would both write the next event file and remove each other's as leftovers.
    try:
        with FileLock(os.fspath(out / LOCK_FILE), timeout=LOCK_TIMEOUT):
            return TensorBoardExport(out, [_export_run(run, folder) for run, folder in _plan(runs, out)])
    except Timeout:
        raise ExpqError(f"another export into {out} has been running for {LOCK_TIMEOUT:g} s; "
                        "try again when it ends") from None


def _plan(runs: Sequence[StoredRun], out: Path) -> list[tuple[StoredRun, Path]]:
    """Check everything before anything is written: bad input changes nothing."""
    check_output_folder(out, "--out")
    plan: list[tuple[StoredRun, Path]] = []
    owners: dict[Path, StoredRun] = {}
    for run in runs:
        folder = out.joinpath(*run.name.split("/"))
        if folder in owners:
            raise InputError(f"runs {owners[folder].path} and {run.path} would both export to {folder}; "
                             "export them into different --out folders")
        owners[folder] = run
        state = read_json_object(folder / STATE_FILE)
        if state is not None and state.get("source") != str(run.path):
            raise InputError(f"{folder} holds the export of another run ({state.get('source')}); "
                             "choose another --out folder")
        plan.append((run, folder))
    return plan


def _export_run(run: StoredRun, folder: Path) -> RunExport:
    state = read_json_object(folder / STATE_FILE) or {}
    exported = _exported(folder, state)
    files: list[str] = list(state.get("files") or [])
    report = RunExport(run.name, folder)
    folder.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(folder, set(files))

    facts = run_facts(run)
    records: list[bytes] = []
    hparams = _hparams(run.config)
    digest = json.dumps(hparams, sort_keys=True)
    if state.get("hparams") != digest:
        records.append(_session_start(hparams, facts.started or time.time()))
    for metric in run.metrics:
        done, offset = exported.get(metric, (0, 0))
        new, read_from, end = read_scalar_since(run.path / tree.METRICS, metric, offset)
        if read_from != offset:  # the file was replaced by a shorter one: skip what was exported of it
            new = new[done:]
        if len(new):
            records.append(events.scalar_records(metric, new["step"], new["value"], new["time"]))
            report.points += len(new)
            report.nonfinite += int((~_finite(new["value"])).sum())
            report.metrics.append(metric)
        exported[metric] = (done + len(new), end)
    ended = bool(state.get("ended"))
    if facts.state in FINAL_STATES and not ended:
        records.append(_session_end(facts))
        ended = True
    if not records:
        return report

    now = time.time()
    name = events.event_file_name(f"{_OURS[1:]}{len(files) + 1:06d}", now)
    temp = folder / f".{name}.tmp"
    with open(temp, "wb") as handle:
        handle.write(events.file_version_record(now))
        handle.write(b"".join(records))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, folder / name)
    files.append(name)
    record = {"version": STATE_VERSION, "source": str(run.path), "hparams": digest, "ended": ended,
              "metrics": exported, "files": files}
    atomic_write(folder / STATE_FILE, json.dumps(record, indent=1) + "\n")
    return report


def _exported(folder: Path, state: dict[str, Any]) -> dict[str, tuple[int, int]]:
    """metric -> (points exported, bytes of its CSV read) from the record.

    Raises:
        ExpqError: a record this version does not understand (an export is never guessed at twice).
    """
    found: dict[str, tuple[int, int]] = {}
    for name, entry in (state.get("metrics") or {}).items():
        if not (isinstance(entry, list) and len(entry) == 2 and all(isinstance(x, int) for x in entry)):
            raise ExpqError(f"{folder / STATE_FILE} is not a record of this expq version; "
                            f"remove {folder} to export that run again")
        found[name] = (entry[0], entry[1])
    return found


def _remove_leftovers(folder: Path, listed: set[str]) -> None:
    """Event files of ours that no record lists, and temp files: an interrupted export's."""
    for entry in folder.iterdir():
        ours = entry.name.startswith("events.out.tfevents.") and _OURS[1:] in entry.name
        if (ours and entry.name not in listed) or (entry.name.startswith(".events.") and entry.name.endswith(".tmp")):
            entry.unlink()


def _finite(values: Any) -> Any:
    import numpy as np

    return np.isfinite(values)


def _hparams(config: dict[str, Any]) -> dict[str, bool | float | str]:
    """The flattened config as HParams values: booleans, numbers, and text for anything else."""
    values: dict[str, bool | float | str] = {}
    for key, value in flatten(config).items():
        if isinstance(value, (bool, str)):
            values[key] = value
        elif isinstance(value, (int, float)):
            values[key] = float(value)
        else:
            values[key] = json.dumps(value, default=str) if value is not None else "null"
    return values


def _session_start(hparams: dict[str, bool | float | str], start: float) -> bytes:
    from tensorboard.plugins.hparams import plugin_data_pb2

    info = plugin_data_pb2.SessionStartInfo(start_time_secs=start)
    for key, value in hparams.items():
        if isinstance(value, bool):
            info.hparams[key].bool_value = value
        elif isinstance(value, float):
            info.hparams[key].number_value = value
        else:
            info.hparams[key].string_value = value
    return _plugin_event(start, "session_start_info", plugin_data_pb2.HParamsPluginData(session_start_info=info))


def _session_end(facts: RunFacts) -> bytes:
    from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

    status = api_pb2.STATUS_FAILURE if facts.state in FAILED_STATES else api_pb2.STATUS_SUCCESS
    end = facts.ended or time.time()
    info = plugin_data_pb2.SessionEndInfo(status=status, end_time_secs=end)
    return _plugin_event(end, "session_end_info", plugin_data_pb2.HParamsPluginData(session_end_info=info))


def _plugin_event(wall_time: float, kind: str, data: Any) -> bytes:
    """One event whose summary carries HParams plugin data, as TensorBoard's hparams.summary builds it."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.plugins.hparams import metadata

    summary = summary_pb2.Summary()
    summary.value.add(tag=f"_hparams_/{kind}", metadata=metadata.create_summary_metadata(data),
                      tensor=metadata.NULL_TENSOR)
    event = event_pb2.Event(wall_time=wall_time, step=0, summary=summary)
    return events.frame(event.SerializeToString())
