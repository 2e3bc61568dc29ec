"""Driving expq the way a user does: one ``expq submit`` per sweep, ``expq worker --drain`` processes."""
from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks._common import Config, run_cmd

__all__ = ["submit", "worker", "drain", "drain_seconds", "state_count", "check_all_done"]


def submit(cfg: Config, root: Path, sweeps: Sequence[str], command: Sequence[str],
           options: Sequence[str] = ()) -> list[int]:
    """One ``expq submit [options]`` of the sweeps' product; returns the new job ids."""
    argv = [cfg.expq, "submit", "--root", str(root), *options]
    for sweep in sweeps:
        argv += ["--sweep", sweep]
    out = run_cmd([*argv, "--", *command], cfg, cwd=root.parent, stdout=subprocess.PIPE)
    return [int(line) for line in out.stdout.split()]


def worker(cfg: Config, root: Path, slots: int, *flags: str, log_name: str = "worker.log") -> subprocess.Popen[bytes]:
    """Start ``expq worker --gpus none --slots N [flags]``; its log goes to a file beside the root."""
    log = open(root.parent / log_name, "ab")  # noqa: SIM115 - closed by the caller's wait via the Popen
    try:
        return subprocess.Popen([cfg.expq, "worker", "--root", str(root), "--gpus", "none", "--slots", str(slots),
                                 *flags], env=cfg.env(), stdout=subprocess.DEVNULL, stderr=log, cwd=root.parent)
    finally:
        log.close()


def drain(cfg: Config, root: Path, slots: int, log_name: str = "worker.log") -> subprocess.Popen[bytes]:
    """Start ``expq worker --gpus none --slots N --drain``."""
    return worker(cfg, root, slots, "--drain", log_name=log_name)


def drain_seconds(cfg: Config, root: Path, slots: int, *flags: str) -> float:
    """Wall time of one ``--drain`` worker process (with ``flags``) from start to exit."""
    start = time.perf_counter()
    process = worker(cfg, root, slots, "--drain", *flags)
    if process.wait() != 0:
        raise RuntimeError(f"expq worker exited {process.returncode}; see {root.parent / 'worker.log'}")
    return time.perf_counter() - start


def state_count(root: Path, state: str) -> int:
    from expq.queue.states import State
    from expq.queue.store import JobQueue

    try:
        return len(JobQueue(root).list_names(State(state)))
    except FileNotFoundError:
        return 0


def check_all_done(root: Path, count: int) -> None:
    done = state_count(root, "done")
    if done != count:
        other = {s: state_count(root, s) for s in ("pending", "running", "failed", "cancelled")}
        raise RuntimeError(f"{done} of {count} jobs done in {root} ({other})")
