"""Which GPUs a worker may use, and a lock per GPU so no two jobs on a host ever share one.

A GPU lock is an ``flock`` on a file named after the GPU in a host-wide directory. The kernel drops
it when the holder dies, and the worker passes the locked descriptor to the job's child, so the GPU
stays locked while an orphaned child of a killed worker still runs on it.
"""
from __future__ import annotations

import fcntl
import logging
import os
import shutil
import subprocess
from pathlib import Path

from expq.contract import GPUS_VAR
from expq.errors import InputError

__all__ = ["parse_gpus", "detect_gpus", "GpuLocks", "default_lock_dir"]

log = logging.getLogger(__name__)


def parse_gpus(option: str, environ: dict[str, str] | None = None) -> tuple[str, ...]:
    """``--gpus``: ``auto``, ``none`` or a comma list of ids (indices or UUIDs).

    Raises:
        InputError: an empty or duplicated id in the list.
    """
    environ = os.environ if environ is None else environ
    if option == "none":
        return ()
    if option == "auto":
        return detect_gpus(environ)
    ids = tuple(part.strip() for part in option.split(","))
    if not all(ids) or len(set(ids)) != len(ids):
        raise InputError(f"invalid --gpus {option!r}: expected auto, none or distinct ids like 0,1,2")
    return ids


def detect_gpus(environ: dict[str, str]) -> tuple[str, ...]:
    """The GPUs this process may use: ``CUDA_VISIBLE_DEVICES`` when set (as SLURM does), else what
    ``nvidia-smi`` lists, else none."""
    visible = environ.get(GPUS_VAR)
    if visible is not None:
        return tuple(v.strip() for v in visible.split(",") if v.strip() and v.strip() != "-1")
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return ()
    try:
        out = subprocess.run([smi, "--query-gpu=index", "--format=csv,noheader"], capture_output=True,
                             text=True, timeout=30, check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("nvidia-smi failed (%s); running without GPUs", exc)
        return ()
    return tuple(line.strip() for line in out.splitlines() if line.strip())


def default_lock_dir(environ: dict[str, str] | None = None) -> Path:
    """Host-wide by default; one directory per SLURM job, whose GPU numbering may be its own."""
    environ = os.environ if environ is None else environ
    base = Path(environ.get("EXPQ_GPU_LOCK_DIR") or f"/tmp/expq-gpu-locks-{os.geteuid()}")
    slurm_job = environ.get("SLURM_JOB_ID")
    return base / f"slurm-{slurm_job}" if slurm_job else base


class GpuLocks:
    """Reserves GPUs for jobs; a reservation is a list of (gpu id, locked file descriptor)."""

    def __init__(self, gpus: tuple[str, ...], lock_dir: Path) -> None:
        self.gpus = gpus
        self.lock_dir = lock_dir
        self._held: dict[str, int] = {}
        if gpus:
            lock_dir.mkdir(parents=True, exist_ok=True, mode=0o700)

    def acquire(self, count: int) -> list[tuple[str, int]] | None:
        """Lock ``count`` GPUs no other job on this host holds, or None (nothing stays locked)."""
        taken: list[tuple[str, int]] = []
        for gpu in self.gpus:
            if len(taken) == count:
                break
            if gpu in self._held:
                continue
            fd = os.open(self.lock_dir / f"gpu-{gpu.replace('/', '_')}.lock", os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            taken.append((gpu, fd))
            self._held[gpu] = fd
        if len(taken) < count:
            self.release(taken)
            return None
        return taken

    def release(self, reservation: list[tuple[str, int]]) -> None:
        for gpu, fd in reservation:
            self._held.pop(gpu, None)
            os.close(fd)
