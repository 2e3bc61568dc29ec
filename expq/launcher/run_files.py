"""Reading a job's files for display (``status``, ``show``): absent is normal, unreadable is news.

A file that does not exist yet is simply not written yet (a job that never ran has no run directory).
One that exists but cannot be used (a run directory that is a file, a ``result.json`` that is a
directory, a FIFO, a link, torn or huge) is a condition the user must see: each reader here returns
what it could read and appends that condition, in a few words, to a ``problems`` list; none raises.
Files are opened without following links or waiting on a FIFO, and read up to ``LIMIT`` bytes, so a
file planted in the tree can neither hang nor flood the command.
"""
from __future__ import annotations

import errno
import json
import os
import stat
from pathlib import Path
from typing import Any

from expq._fs import NotRegular, open_regular, read_at_most
from expq.queue.attempts import Attempt, read_attempts
from expq.queue.lease import Lease, read_lease
from expq.queue.paths import QueuePaths, RunPaths

__all__ = ["LIMIT", "read_json", "not_a_directory", "read_result",
           "may_have_attempts", "read_run_attempts", "read_run_lease", "read_gpu_usage", "read_gpu_reasons"]

LIMIT = 1 << 20  # a result.json or a spec is a few kB; a bigger one is not what expq wrote


def read_json(path: str | os.PathLike[str]) -> Any:
    """The JSON value in a file of at most ``LIMIT`` bytes.

    Raises:
        OSError: as ``_fs.open_regular``, or ``EFBIG`` when larger. ValueError: not JSON (or nested too deep).
    """
    fd, size = open_regular(path)
    try:
        raw = read_at_most(fd, LIMIT, size, regular=True)  # sized: a 1 MiB read allocates 1 MiB
    finally:
        os.close(fd)
    if len(raw) > LIMIT:
        raise OSError(errno.EFBIG, f"larger than {LIMIT >> 20} MiB")
    try:
        return json.loads(raw)
    except RecursionError:
        raise ValueError("nested too deep") from None


def _strerror(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def not_a_directory(path: Path) -> bool:
    """True when ``path`` exists as something else than a folder (or a folder above it is a file)."""
    try:
        return not stat.S_ISDIR(os.stat(path).st_mode)
    except FileNotFoundError:
        return False
    except OSError:  # ENOTDIR: a folder above it is a file
        return True


def _condition(run: RunPaths, what: str, exc: OSError) -> str:
    if exc.errno == errno.ENOTDIR and not_a_directory(run.dir):
        return "run directory is not a directory"
    if exc.errno == errno.ELOOP:
        return f"{what} is a symbolic link"
    if exc.errno == errno.EISDIR:
        return f"{what} is a directory"
    if isinstance(exc, NotRegular):
        return f"{what} is not a regular file"
    if exc.errno == errno.EFBIG:
        return f"{what} is {exc.strerror}"
    return f"cannot read {what} ({_strerror(exc)})"


def read_result(run: RunPaths, problems: list[str]) -> dict[str, Any] | None:
    """``result.json`` as a dict; None when absent, or unusable (the condition added to ``problems``)."""
    try:
        data = read_json(run.result)
    except FileNotFoundError:
        return None
    except OSError as exc:
        problems.append(_condition(run, "result.json", exc))
        return None
    except ValueError:
        problems.append("result.json is not valid JSON")
        return None
    if not isinstance(data, dict):
        problems.append("result.json is not a JSON object")
        return None
    return data


def may_have_attempts(run: RunPaths, problems: list[str]) -> bool:
    """Whether attempt records may exist: a requeued pending job shows its attempt count, and a
    never-run one costs one failed stat."""
    try:
        return stat.S_ISDIR(os.stat(run.attempts).st_mode)
    except FileNotFoundError:
        return False
    except OSError as exc:
        problems.append(_condition(run, "its attempt records", exc))
        return False


def read_run_attempts(run: RunPaths, problems: list[str]) -> list[Attempt]:
    """Every readable attempt record, oldest first (see ``read_attempts``)."""
    try:
        return read_attempts(run)
    except OSError as exc:
        problems.append(_condition(run, "its attempt records", exc))
        return []


def read_run_lease(paths: QueuePaths, job: int, problems: list[str]) -> Lease | None:
    """A running job's lease, or None; a ``leases`` folder that is a file is named in ``problems``."""
    try:
        found = read_lease(paths, job)
    except OSError as exc:
        found = None
        if not not_a_directory(paths.leases):
            problems.append(f"cannot read its lease ({_strerror(exc)})")
    if found is None and not_a_directory(paths.leases):
        problems.append("the leases folder is not a directory")
    return found


def read_gpu_usage(run: RunPaths, since: float) -> tuple[int | None, int | None]:
    """A running job's GPU memory (bytes) and its GPUs' utilisation (%) as its worker last sampled them
    after ``since`` (the attempt's start: an earlier attempt's sample is not this one's); None for what
    is not known (not sampled yet, no probe, a torn or foreign file: it is rewritten soon)."""
    try:
        data = read_json(run.gpu_usage)
    except (OSError, ValueError):
        return None, None
    if not isinstance(data, dict) or not isinstance(data.get("sampled_at"), (int, float)) or data["sampled_at"] < since:
        return None, None
    held, util = data.get("gpu_mem_bytes"), data.get("gpu_util")
    return (held if isinstance(held, int) and not isinstance(held, bool) else None,
            util if isinstance(util, int) and not isinstance(util, bool) else None)


def read_gpu_reasons(paths: QueuePaths, worker_id: str) -> dict[str, str]:
    """Why jobs wait for this worker's GPUs, by ``result.gpu_shape_key``; {} when it says nothing."""
    if not worker_id or "/" in worker_id:
        return {}
    try:
        data = read_json(paths.gpu_reasons_file(worker_id))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if isinstance(k, str) and isinstance(v, str)}
