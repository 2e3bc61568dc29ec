"""Checking an ``Executor``'s options when it is made, so a bad one fails before any job is queued.

The CLI checks the same values with argparse types; here they come from Python, so each check names
the parameter and the value, in one line, as an ``InputError``.
"""
from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Mapping
from typing import Any

from expq._fs import check_name
from expq.contract import RESERVED_VARS
from expq.errors import InputError, NotFound
from expq.launcher.submit import JobOptions
from expq.queue.spec import MAX_PRIORITY

__all__ = ["job_options"]

_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _count(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InputError(f"invalid {name}={value!r}: expected a whole number >= 0")
    return value


def _env(env: Mapping[str, str] | None) -> dict[str, str]:
    if env is None:
        return {}
    if not isinstance(env, Mapping):
        raise InputError(f"invalid env={env!r}: expected a mapping of variable names to strings")
    for key, value in env.items():
        if not isinstance(key, str) or not _ENV_KEY.fullmatch(key):
            raise InputError(f"invalid env key {key!r}: letters, digits and _, not starting with a digit")
        if key.startswith("EXPQ_") or key in RESERVED_VARS:
            raise InputError(f"invalid env key {key!r}: the worker sets it for each job, it cannot be overridden")
        if not isinstance(value, str):
            raise InputError(f"invalid env[{key!r}]={value!r}: values must be strings")
    return dict(env)


def job_options(experiment: str, gpus: int, gpu_mem: int | str | None, retries: int, timeout: float | None,
                priority: int, env: Mapping[str, str] | None,
                cwd: str | os.PathLike[str] | None = None) -> JobOptions:
    """The queue options shared by every job of one executor.

    Raises:
        InputError: naming the first bad parameter and its value.
    """
    check_name("experiment", experiment)
    options: dict[str, Any] = {"experiment": experiment, "gpus": _count("gpus", gpus),
                               "retries": _count("retries", retries), "env": _env(env)}
    if not isinstance(priority, int) or isinstance(priority, bool) or abs(priority) > MAX_PRIORITY:
        raise InputError(f"invalid priority={priority!r}: expected a whole number from -{MAX_PRIORITY} to {MAX_PRIORITY}")
    options["priority"] = priority
    if cwd is not None:
        if not os.path.isdir(cwd):
            raise NotFound("directory for cwd", cwd)
        options["cwd"] = os.path.abspath(cwd)
    if timeout is not None:
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not timeout > 0 or math.isinf(timeout):
            raise InputError(f"invalid timeout={timeout!r}: expected seconds > 0, or None for no limit")
        options["timeout"] = float(timeout)
    if gpu_mem is not None:
        # Packing jobs by GPU memory is the worker's business (issue 13); until the queue's options
        # carry it, asking for it must fail loudly rather than be ignored.
        if "gpu_mem" not in {f.name for f in dataclasses.fields(JobOptions)}:
            raise InputError(f"gpu_mem={gpu_mem!r} is not supported by this version of the queue")
        options["gpu_mem"] = gpu_mem
    return JobOptions(**options)
