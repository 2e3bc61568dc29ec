"""Driving expq the way a user does: one ``expq submit`` per sweep, ``expq worker --drain`` processes."""
from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from benchmarks._common import Config, run_cmd

__all__ = ["submit", "drain", "drain_seconds", "state_count", "check_all_done"]


def submit(cfg: Config, root: Path, sweeps: Sequence[str], command: Sequence[str]) -> None:
    argv = [cfg.expq, "submit", "--root", str(root)]
    for sweep in sweeps:
        argv += ["--sweep", sweep]
    run_cmd([*argv, "--", *command], cfg, cwd=root.parent)


def drain(cfg: Config, root: Path, slots: int, log_name: str = "worker.log") -> subprocess.Popen[bytes]:
    """Start ``expq worker --gpus none --slots N --drain``; its log goes to a file beside the root."""
    log = open(root.parent / log_name, "ab")  # noqa: SIM115 - closed by the caller's wait via the Popen
    try:
        return subprocess.Popen([cfg.expq, "worker", "--root", str(root), "--gpus", "none", "--slots", str(slots),
                                 "--drain"], env=cfg.env(), stdout=subprocess.DEVNULL, stderr=log,
                                cwd=root.parent)
    finally:
        log.close()


def drain_seconds(cfg: Config, root: Path, slots: int) -> float:
    """Wall time of one worker process from start to exit."""
    start = time.perf_counter()
    worker = drain(cfg, root, slots)
    if worker.wait() != 0:
        raise RuntimeError(f"expq worker exited {worker.returncode}; see {root.parent / 'worker.log'}")
    return time.perf_counter() - start


def state_count(root: Path, state: str) -> int:
    try:
        return sum(1 for name in os.listdir(root / "queue" / state) if name.endswith(".json"))
    except FileNotFoundError:
        return 0


def check_all_done(root: Path, count: int) -> None:
    done = state_count(root, "done")
    if done != count:
        other = {s: state_count(root, s) for s in ("pending", "running", "failed", "cancelled")}
        raise RuntimeError(f"{done} of {count} jobs done in {root} ({other})")
