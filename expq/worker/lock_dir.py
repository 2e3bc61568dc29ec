"""The host-wide folder of one user's worker locks: GPU locks, the orphan reaper's, start-up turns.

Light on purpose (``os`` and ``stat`` only): a worker takes its start-up turn in this folder before it
imports anything else (see ``start_turn``).
"""
from __future__ import annotations

import os
import stat

from expq.errors import InsecureQueue

TYPE_CHECKING = False  # not typing's: this module runs before a worker's start-up turn
if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["lock_dir_name", "check_lock_dir"]

_BASE_PREFIX = "expq-gpu-locks"


def lock_dir_name(environ: Mapping[str, str] | None = None) -> str:
    """Host-wide for this user by default; one folder per SLURM job, whose GPU numbering may be its own."""
    environ = os.environ if environ is None else environ
    runtime = environ.get("XDG_RUNTIME_DIR")
    if environ.get("EXPQ_GPU_LOCK_DIR"):
        base = environ["EXPQ_GPU_LOCK_DIR"]
    elif runtime and os.path.isdir(runtime) and os.stat(runtime).st_uid == os.geteuid():
        base = os.path.join(runtime, _BASE_PREFIX)
    else:
        base = f"/tmp/{_BASE_PREFIX}-{os.geteuid()}"
    slurm_job = environ.get("SLURM_JOB_ID")
    return os.path.join(base, f"slurm-{slurm_job}") if slurm_job else base


def check_lock_dir(path: str | os.PathLike[str]) -> None:
    """Create the lock folder (and its parent) owner-only, or accept it only if this user owns it and
    nobody else can write to it: a folder planted by another user would let them free our GPUs.

    Raises:
        InsecureQueue: naming the folder and what is wrong with it.
    """
    folder = os.path.normpath(os.fspath(path))
    parent = os.path.dirname(folder)
    for each in (parent, folder) if os.path.basename(parent).startswith(_BASE_PREFIX) else (folder,):
        try:
            os.mkdir(each, 0o700)
        except FileExistsError:
            info = os.lstat(each)
            if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
                raise InsecureQueue(each, "the GPU lock folder is not a directory (a symlink or a file)") from None
            if info.st_uid != os.geteuid() or info.st_mode & 0o022:
                raise InsecureQueue(each, f"the GPU lock folder is owned by uid {info.st_uid} or writable by others "
                                          f"(mode {stat.S_IMODE(info.st_mode):o}); remove it, or set "
                                          "EXPQ_GPU_LOCK_DIR to a folder of yours") from None
