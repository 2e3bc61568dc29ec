"""One live run: its directory, metadata (``run.json``), config layer, metrics, logger and capture."""
from __future__ import annotations

import json
import os
import platform
import socket
import sys
import time
import traceback
from collections.abc import Callable, Mapping
from enum import Enum
from pathlib import Path
from typing import Any

from expq._fs import atomic_write
from expq.experiment import tree
from expq.experiment.config import deep_merge
from expq.experiment.logger import QUIET, RunLogger
from expq.experiment.metrics import MetricsSink
from expq.experiment.sources import GitInfo
from expq.experiment.stdout import OutputCapture

__all__ = ["Run", "RunState", "iso_time"]

META_VERSION = 1


class RunState(str, Enum):
    """The life of a run written in ``run.json``: running, then done or failed."""

    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


def iso_time(epoch: float) -> str:
    """UTC ISO 8601 with an offset, unambiguous across hosts and time zones."""
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch)) + f".{int(epoch % 1 * 1000):03d}+00:00"


class Run:
    """A run directory being written by this process (the experiment's own, or a nested one)."""

    def __init__(
        self,
        experiment: str,
        path: Path,
        label: str,
        parent: Run | None,
        base_config: Callable[[], Mapping[str, Any]],
        git: GitInfo,
        command: str | None = None,
        capture: bool = False,
        flush_interval: float = 1.0,
        job_id: int | None = None,
    ) -> None:
        self.experiment = experiment
        self.path = path
        self.label = label
        self.parent = parent
        self.command = command
        self.layer: dict[str, Any] = {}
        self._base_config = base_config
        self.state = RunState.RUNNING
        self.result: Any = None  # what the run's command returned, recorded by finish()
        self.metrics = MetricsSink(path / tree.METRICS, flush_interval)
        self.log: RunLogger = RunLogger(path / tree.RUN_LOG, label, parent.log if parent else None, experiment)
        self.capture = OutputCapture(path / tree.STDOUT_LOG, path / tree.STDERR_LOG) if capture else None
        self.started = time.time()
        self.meta: dict[str, Any] = {
            "version": META_VERSION,
            "experiment": experiment,
            "run": label,
            "command": command,
            "job_id": job_id,
            "state": self.state.value,
            "started_at": iso_time(self.started),
            "finished_at": None,
            "duration_s": None,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "user": _user(),
            "python": sys.version.split()[0],
            "python_implementation": platform.python_implementation(),
            "executable": sys.executable,
            "argv": list(sys.argv),
            "cwd": os.getcwd(),
            "git": {"commit": git.commit, "dirty": git.dirty, "root": git.root},
            "config": {},
        }

    def begin(self) -> None:
        """Write the first ``run.json`` and mark the start in the log."""
        self.write_meta()
        what = f"command {self.command}" if self.command else f"experiment {self.experiment}"
        self.log.logger.info("===== start %s (run %s, pid %d) =====", what, self.label, os.getpid(), extra=QUIET)

    @property
    def config(self) -> dict[str, Any]:
        """This run's config: the enclosing config with this run's own layer merged over it."""
        return deep_merge(self._base_config(), self.layer)

    def add_config(self, update: Mapping[str, Any]) -> None:
        self.layer = deep_merge(self.layer, update)
        self.write_meta()

    def write_meta(self) -> None:
        """Rewrite ``run.json`` atomically (rare: start, config changes, end)."""
        self.meta["config"] = self.config
        atomic_write(self.path / tree.RUN_JSON, json.dumps(self.meta, indent=2, default=repr) + "\n", durable=False)

    def finish(self, error: BaseException | None = None, result: Any = None, result_file: str | None = None) -> None:
        """Record the outcome, flush metrics, stop capture and detach the log (idempotent)."""
        if self.state is not RunState.RUNNING:
            return
        failed = error is not None and not (isinstance(error, SystemExit) and error.code in (0, None))
        self.state = RunState.FAILED if failed else RunState.DONE
        ended = time.time()
        duration = ended - self.started
        if failed and error is not None:
            text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
            self.log.logger.error("run failed with %s: %s\n%s", type(error).__name__, error, text.rstrip(),
                                  extra=QUIET)  # the exception itself is raised on to the caller
            self.meta["error"] = f"{type(error).__name__}: {error}"
        if result_file is not None:
            self.meta["result_file"] = result_file
        elif result is not None:
            self.meta["result"] = result
        what = f"command {self.command}" if self.command else f"experiment {self.experiment}"
        self.log.logger.info("===== end %s: %s in %.3f s =====", what, self.state.value, duration, extra=QUIET)
        self.meta.update(state=self.state.value, finished_at=iso_time(ended), duration_s=round(duration, 6))
        try:
            self.metrics.close()
            self.write_meta()
        finally:
            if self.capture is not None:
                self.capture.stop()
            self.log.close()


def _user() -> str | None:
    try:
        import getpass

        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers) and no USER variable
        return None
