"""The experiments list: every experiment with its run count and runs per state, cheap on big roots."""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from expq._fs import read_json_object
from expq.experiment import tree
from expq.experiment.table import natural_key
from expq.ui.runs_data import SUMMARY_BUDGET, SafeRun

__all__ = ["RunStates", "UNREAD", "experiments"]

UNREAD = "not read yet"


class RunStates:
    """The state of every run directory the experiments list has seen, kept up to date cheaply.

    A list request only lists each experiment's folder; states it does not know yet are read for a
    time budget, the rest by a background thread (a root of 100,000 finished jobs is read once, at
    disk speed, and shows ``UNREAD`` counts meanwhile). Each request also hands the thread every
    run that may still change (running, unknown) and a rotating share of the finished ones, which
    are re-read only when their record file changed.
    """

    FINAL = frozenset({"done", "failed", "cancelled", "crashed"})
    RECHECK = 2000  # finished runs re-checked per request, in turn

    def __init__(self) -> None:
        self._known: dict[str, tuple[tuple[int, int], str | None]] = {}
        self._todo: dict[str, None] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._turn = 0

    def _read(self, run_dir: str) -> None:
        key: tuple[int, int] = (0, 0)
        state: str | None = None
        for marker in (tree.RESULT_JSON, tree.RUN_JSON, tree.JOB_JSON):
            try:
                stat = os.stat(os.path.join(run_dir, marker))
            except OSError:
                continue
            key = (stat.st_mtime_ns, stat.st_size)
            with self._lock:
                known = self._known.get(run_dir)
            if known is not None and known[0] == key and known[1] in self.FINAL:
                return
            result = read_json_object(os.path.join(run_dir, marker)) if marker == tree.RESULT_JSON else None
            if result is not None and isinstance(result.get("state"), str):
                state = result["state"]  # what StoredRun.state says first, without its other reads
            else:
                state = SafeRun(Path(run_dir), Path(run_dir).parent).state
            break
        with self._lock:
            self._known[run_dir] = (key, state)

    def counts(self, folder: Path, budget: float) -> dict[str, int]:
        """Runs per state in ``folder`` (one experiment); ``UNREAD`` for those not read yet."""
        try:
            paths = [e.path for e in os.scandir(folder) if not e.name.startswith(".") and e.is_dir()]
        except OSError:
            return {}
        deadline = time.monotonic() + budget
        counts: dict[str, int] = {}
        later: list[str] = []
        for path in paths:
            with self._lock:
                known = self._known.get(path)
            if known is None and time.monotonic() < deadline:
                self._read(path)
                with self._lock:
                    known = self._known.get(path)
            if known is None:
                later.append(path)
                counts[UNREAD] = counts.get(UNREAD, 0) + 1
                continue
            if known[1] is not None:
                counts[known[1]] = counts.get(known[1], 0) + 1
            if known[1] not in self.FINAL:
                later.append(path)
        waiting = set(later)
        finished = [p for p in paths if p not in waiting]
        if finished:
            start = self._turn % len(finished)
            later += finished[start:start + self.RECHECK]
            self._turn += self.RECHECK
        self._hand_over(later)
        return counts

    def _hand_over(self, paths: list[str]) -> None:
        with self._lock:
            self._todo.update(dict.fromkeys(paths))
            if not self._todo or (self._thread is not None and self._thread.is_alive()):
                return
            self._thread = threading.Thread(target=self._work, name="expq-ui-states", daemon=True)
            self._thread.start()

    def _work(self) -> None:
        while True:
            with self._lock:
                if not self._todo:
                    self._thread = None
                    return
                path = next(iter(self._todo))
                del self._todo[path]
            self._read(path)


def experiments(root: Path, states: RunStates | None = None, budget: float = SUMMARY_BUDGET) -> list[dict[str, Any]]:
    """Every experiment with its run count, how many runs are in each state, and when it last changed."""
    states = states or RunStates()
    folder = root / tree.EXPERIMENTS
    try:
        names = [e.name for e in os.scandir(folder) if e.is_dir() and not e.name.startswith(".")]
    except OSError:
        return []
    out = []
    for name in sorted(names, key=natural_key):
        counts = states.counts(folder / name, budget)
        out.append({"name": name, "runs": sum(counts.values()), "states": counts, "updated": _mtime(folder / name)})
    return out


def _mtime(path: Path) -> float | None:
    try:
        return path.stat().st_mtime
    except OSError:
        return None
