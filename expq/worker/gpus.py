"""Which GPUs a worker may use, and a lock per GPU so no two jobs on a host ever share one.

A GPU lock is an ``flock`` on a file named after the GPU in a folder only this user can write (under
``$XDG_RUNTIME_DIR``, else ``/tmp/expq-gpu-locks-<uid>``, checked: a folder another user made first
is refused, never used). The kernel drops a lock when its holder dies, and the worker passes the
locked descriptor to the job's child, so the GPU stays locked while an orphaned child of a killed
worker still runs on it. expq never deletes a lock file, and in a private folder nobody else can, so a
lock cannot vanish under its holder; a file replaced between opening and locking it is not trusted.
"""
from __future__ import annotations

import fcntl
import logging
import os
import shutil
import stat
import subprocess
from collections.abc import Mapping
from pathlib import Path

from expq.contract import GPUS_VAR
from expq.errors import InputError, InsecureQueue

__all__ = ["parse_gpus", "detect_gpus", "GpuLocks", "default_lock_dir", "check_lock_dir"]

log = logging.getLogger(__name__)

SMI_TIMEOUT = 30.0


def parse_gpus(option: str, environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """``--gpus``: ``auto``, ``none`` or a comma list of ids (indices or UUIDs).

    Raises:
        InputError: an empty or duplicated id, or one this host does not have (checked against
            ``CUDA_VISIBLE_DEVICES`` when set, else against ``nvidia-smi`` when there is one).
    """
    environ = os.environ if environ is None else environ
    if option == "none":
        return ()
    if option == "auto":
        return detect_gpus(environ)
    ids = tuple(part.strip() for part in option.split(","))
    if not all(ids) or len(set(ids)) != len(ids):
        raise InputError(f"invalid --gpus {option!r}: expected auto, none or distinct ids like 0,1,2")
    known = _known_ids(environ)
    unknown = [gpu for gpu in ids if known is not None and gpu not in known]
    if unknown:
        raise InputError(f"invalid --gpus {option!r}: no GPU {', '.join(unknown)} on this host "
                         f"(it has {', '.join(sorted(known or ())) or 'none'})")
    return ids


def _known_ids(environ: Mapping[str, str]) -> set[str] | None:
    """The ids a GPU of this process may be named by, or None when nothing can tell."""
    visible = environ.get(GPUS_VAR)
    if visible is not None:
        return set(_split(visible))
    rows = _smi(["--query-gpu=index,uuid", "--format=csv,noheader"])
    if rows is None:
        return None
    return {part.strip() for row in rows for part in row.split(",") if part.strip()}


def detect_gpus(environ: Mapping[str, str]) -> tuple[str, ...]:
    """The GPUs this process may use: ``CUDA_VISIBLE_DEVICES`` when set (as SLURM does), else what
    ``nvidia-smi`` lists, else none."""
    visible = environ.get(GPUS_VAR)
    if visible is not None:
        return _split(visible)
    return tuple(_smi(["--query-gpu=index", "--format=csv,noheader"]) or ())


def _split(visible: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in visible.split(",") if v.strip() and v.strip() != "-1")


def _smi(arguments: list[str]) -> list[str] | None:
    """The non-empty lines ``nvidia-smi`` prints, or None without it (or when it fails: logged)."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run([smi, *arguments], capture_output=True, text=True, timeout=SMI_TIMEOUT,
                             check=True).stdout
    except (OSError, subprocess.SubprocessError) as exc:
        log.warning("nvidia-smi failed (%s); running without GPUs", exc)
        return None
    return [line.strip() for line in out.splitlines() if line.strip()]


def default_lock_dir(environ: Mapping[str, str] | None = None) -> Path:
    """Host-wide for this user by default; one folder per SLURM job, whose GPU numbering may be its own."""
    environ = os.environ if environ is None else environ
    runtime = environ.get("XDG_RUNTIME_DIR")
    if environ.get("EXPQ_GPU_LOCK_DIR"):
        base = Path(environ["EXPQ_GPU_LOCK_DIR"])
    elif runtime and os.path.isdir(runtime) and os.stat(runtime).st_uid == os.geteuid():
        base = Path(runtime) / "expq-gpu-locks"
    else:
        base = Path(f"/tmp/expq-gpu-locks-{os.geteuid()}")
    slurm_job = environ.get("SLURM_JOB_ID")
    return base / f"slurm-{slurm_job}" if slurm_job else base


def check_lock_dir(path: Path) -> None:
    """Create the lock folder (and its parent) owner-only, or accept it only if this user owns it and
    nobody else can write to it: a folder planted by another user would let them free our GPUs.

    Raises:
        InsecureQueue: naming the folder and what is wrong with it.
    """
    for folder in (path.parent, path) if path.parent.name.startswith("expq-gpu-locks") else (path,):
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            info = os.lstat(folder)
            if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
                raise InsecureQueue(folder, "the GPU lock folder is not a directory (a symlink or a file)") from None
            if info.st_uid != os.geteuid() or info.st_mode & 0o022:
                raise InsecureQueue(folder, f"the GPU lock folder is owned by uid {info.st_uid} or writable by others "
                                            f"(mode {stat.S_IMODE(info.st_mode):o}); remove it, or set "
                                            "EXPQ_GPU_LOCK_DIR to a folder of yours") from None


class GpuLocks:
    """Reserves GPUs for jobs; a reservation is a list of (gpu id, locked file descriptor).

    Raises (constructor): InsecureQueue when the lock folder is not safe to use.
    """

    def __init__(self, gpus: tuple[str, ...], lock_dir: Path) -> None:
        self.gpus = gpus
        self.lock_dir = lock_dir
        self._held: dict[str, int] = {}
        if gpus:
            check_lock_dir(lock_dir)

    def acquire(self, count: int) -> list[tuple[str, int]] | None:
        """Lock ``count`` GPUs no other job on this host holds, or None (nothing stays locked)."""
        taken: list[tuple[str, int]] = []
        for gpu in self.gpus:
            if len(taken) == count:
                break
            if gpu in self._held:
                continue
            fd = self._lock(gpu)
            if fd is None:
                continue
            taken.append((gpu, fd))
            self._held[gpu] = fd
        if len(taken) < count:
            self.release(taken)
            return None
        return taken

    def _lock(self, gpu: str) -> int | None:
        """The locked descriptor of this GPU's lock file, or None while someone holds it."""
        path = self.lock_dir / f"gpu-{gpu.replace('/', '_')}.lock"
        for _ in range(3):  # the file may be replaced between open and lock: lock the current one
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            try:
                current = os.stat(path, follow_symlinks=False).st_ino
            except FileNotFoundError:
                current = -1
            if current == os.fstat(fd).st_ino:
                return fd
            os.close(fd)  # we locked a file that was deleted: its old holder may still run there
        return None

    def release(self, reservation: list[tuple[str, int]]) -> None:
        for gpu, fd in reservation:
            self._held.pop(gpu, None)
            os.close(fd)
