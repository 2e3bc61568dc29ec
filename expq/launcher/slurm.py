"""expq workers as a SLURM job array: the sbatch script, and the calls to sbatch, squeue and scancel.

The script and everything it is built from are pure functions of a ``WorkerArray``, so tests check
them without SLURM; the few functions that run a SLURM tool are at the bottom, each one call.

Each array task ``exec``s one ``expq worker``, which thereby *is* the batch step's main process: the
``--signal=B:USR1@LEAD`` warning before the time limit (``B:`` = the batch shell only) and scancel's
SIGTERM reach the worker itself, which re-queues its jobs without spending a retry and exits 0.
Which array jobs belong to which root is written into the job itself (``--comment=expq-root:<root>``),
so ``expq slurm list`` and ``stop`` need no bookkeeping file that could go stale.
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from expq.errors import ExpqError, InputError

__all__ = ["WorkerArray", "SlurmTask", "SlurmError", "JOB_NAME", "WARNING_SIGNAL", "CLUSTER_LEASE_TIMEOUT",
           "parse_time", "validate", "default_grace", "root_comment", "logs_dir", "worker_command", "sbatch_options",
           "script", "parse_squeue", "belongs_to", "require_tool", "kill_wait", "submit", "list_tasks", "stop_tasks"]

JOB_NAME = "expq-worker"
WARNING_SIGNAL = "USR1"  # the worker treats it like SIGTERM; its log then says "time limit", not "scancel"
COMMENT_PREFIX = "expq-root:"
MAX_SIGNAL_LEAD = 65535  # SLURM keeps the lead in 16 bits
FALLBACK_GRACE = 10.0  # when KillWait cannot be read; below the usual KillWait of 30 s
# A shared filesystem's attribute cache may hide a heartbeat's progress from another node for up to
# acregmax (60 s by default on NFS); 300 s leaves room for two of those plus the heartbeats themselves.
CLUSTER_LEASE_TIMEOUT = 300.0
_TOOL_TIMEOUT = 60.0
# job id (123_4) | array job id | the task's own job id | state | node | elapsed | limit | reason | comment
SQUEUE_FORMAT = "%i|%F|%A|%T|%N|%M|%l|%r|%k"

# sbatch options the script sets itself (value: the expq option to use instead, or why not)
_RESERVED = {
    "--array": "--workers", "-a": "--workers", "--job-name": "expq's own", "-J": "expq's own",
    "--output": "expq's own", "-o": "expq's own", "--error": "expq's own", "-e": "expq's own",
    "--comment": "expq's own", "--signal": "--signal-lead", "--chdir": "expq's own", "-D": "expq's own",
    "--wrap": "expq's own", "--parsable": "expq's own", "--partition": "--partition", "-p": "--partition",
    "--time": "--time", "-t": "--time", "--cpus-per-task": "--cpus-per-worker", "-c": "--cpus-per-worker",
    "--mem": "--mem",
}
_GPU_OPTIONS = ("--gres", "--gpus", "-G", "--gpus-per-node", "--gpus-per-task")
_TIME = re.compile(r"^(?:(\d+)-(\d+)(?::(\d+)(?::(\d+))?)?|(\d+)(?::(\d+)(?::(\d+))?)?)$")
_MEM = re.compile(r"^\d+[KMGTkmgt]?$")


class SlurmError(ExpqError):
    """A SLURM tool is missing or refused a request (exit code 1: the environment, not the input)."""


@dataclass(frozen=True)
class WorkerArray:
    """What ``expq slurm start`` asks for: N identical worker tasks serving one root."""

    root: Path
    workers: int
    gpus_per_worker: int = 0
    slots_per_worker: int | None = None
    partition: str | None = None
    time: str | None = None
    cpus_per_worker: int | None = None
    mem: str | None = None
    signal_lead: int = 120
    drain: bool = True
    grace: float = FALLBACK_GRACE
    lease_timeout: float | None = CLUSTER_LEASE_TIMEOUT
    sbatch_args: tuple[str, ...] = ()
    python: str = sys.executable

    @property
    def wants_gpus(self) -> bool:
        """True when SLURM will hand each task GPUs (and set CUDA_VISIBLE_DEVICES for it)."""
        return self.gpus_per_worker > 0 or any(_option_name(a) in _GPU_OPTIONS for a in self.sbatch_args)


@dataclass(frozen=True)
class SlurmTask:
    """One line of ``squeue -r``: an array task (``123_4``) or a plain job (``123``)."""

    job_id: str  # as SLURM prints it and as workers record it: 123_4, or 123
    array_job: str  # the id scancel takes for the whole array
    own_id: str  # the task's own job id (SLURM_JOB_ID inside it)
    state: str
    node: str
    elapsed: str
    limit: str
    reason: str
    comment: str

    def matches(self, wanted: str) -> bool:
        return wanted in (self.job_id, self.array_job, self.own_id)


# -- validation -----------------------------------------------------------------------------------

def parse_time(text: str) -> int | None:
    """Seconds of a SLURM ``--time`` (``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH[:MM[:SS]]``); None for
    ``UNLIMITED``.

    Raises:
        InputError: not a SLURM time.
    """
    if text.upper() in ("UNLIMITED", "INFINITE"):
        return None
    match = _TIME.match(text)
    if match is None:
        raise InputError(f"invalid --time {text!r}: expected minutes, MM:SS, HH:MM:SS or D-HH[:MM[:SS]]")
    d, dh, dm, ds, m, ms, hms = (int(g) if g else 0 for g in match.groups())
    if match.group(1) is not None:
        seconds = ((d * 24 + dh) * 60 + dm) * 60 + ds
    elif match.group(7) is not None:
        seconds = (m * 60 + ms) * 60 + hms  # HH:MM:SS
    else:
        seconds = m * 60 + ms
    if seconds <= 0:
        raise InputError(f"invalid --time {text!r}: must be longer than 0")
    return seconds


def default_grace(kill_wait_s: int | None) -> float:
    """The workers' ``--grace``: half the cluster's KillWait (0.5-30 s), so after scancel or a
    preemption a worker has stopped and re-queued its jobs before SLURM's SIGKILL."""
    if kill_wait_s is None:
        return FALLBACK_GRACE
    return min(30.0, max(0.5, kill_wait_s / 2))


def validate(array: WorkerArray, kill_wait_s: int | None) -> None:
    """Every check that needs no SLURM and writes nothing.

    Raises:
        InputError: the first bad value, in one line.
    """
    if array.workers < 1:
        raise InputError(f"invalid --workers {array.workers}: must be at least 1")
    if array.gpus_per_worker < 0:
        raise InputError(f"invalid --gpus-per-worker {array.gpus_per_worker}: must be 0 or more")
    for name, count in (("--slots-per-worker", array.slots_per_worker), ("--cpus-per-worker", array.cpus_per_worker)):
        if count is not None and count < 1:
            raise InputError(f"invalid {name} {count}: must be at least 1")
    for name, word in (("--partition", array.partition), ("--mem", array.mem)):
        if word is not None and (not word or any(c.isspace() or c in "\"'#" for c in word)):
            raise InputError(f"invalid {name} {word!r}: must be one word")
    if array.mem is not None and not _MEM.match(array.mem):
        raise InputError(f"invalid --mem {array.mem!r}: expected a size like 16G or 4000M")
    limit = parse_time(array.time) if array.time is not None else None
    if not 1 <= array.signal_lead <= MAX_SIGNAL_LEAD:
        raise InputError(f"invalid --signal-lead {array.signal_lead}: must be 1 to {MAX_SIGNAL_LEAD} seconds")
    if limit is not None and array.signal_lead > limit:
        raise InputError(f"--signal-lead {array.signal_lead} s is longer than --time {array.time} "
                         f"({limit} s): the workers would be told to stop before they start")
    if array.lease_timeout is not None and not 0 < array.lease_timeout < float("inf"):
        raise InputError(f"invalid --lease-timeout {array.lease_timeout:g}: must be a positive number of seconds")
    if not array.grace > 0:
        raise InputError(f"invalid --grace {array.grace:g}: must be positive")
    if array.grace >= array.signal_lead:
        raise InputError(f"--grace {array.grace:g} s must be shorter than --signal-lead {array.signal_lead} s, "
                         "or jobs are still stopping when the time limit strikes")
    if kill_wait_s is not None and array.grace >= kill_wait_s:
        raise InputError(f"--grace {array.grace:g} s is not below the cluster's KillWait ({kill_wait_s} s): "
                         "after scancel SLURM would SIGKILL the workers before they re-queue their jobs")
    _check_root(array.root)
    for arg in array.sbatch_args:
        _check_sbatch_arg(arg, array.gpus_per_worker)


def _check_root(root: Path) -> None:
    text = str(root)
    if not root.is_absolute():
        raise InputError(f"invalid root {text!r}: must be an absolute path")
    if any(c in text for c in "\"\n\r\0%"):
        raise InputError(f"invalid root {text!r}: an sbatch script cannot name a path with '\"', '%' or a newline")
    if root.exists() and not root.is_dir():
        raise InputError(f"invalid root {text}: not a directory")
    existing = root
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"cannot create root {text}: {existing} is not a writable directory")


def _option_name(arg: str) -> str:
    if arg.startswith("--"):
        return arg.split("=", 1)[0]
    return arg[:2]


def _check_sbatch_arg(arg: str, gpus_per_worker: int) -> None:
    if not arg.startswith("-") or arg in ("-", "--"):
        raise InputError(f"invalid --sbatch-arg {arg!r}: give each sbatch option with its value in one "
                         "argument, like --sbatch-arg=--account=myproject")
    if any(c in arg for c in "\n\r\0"):
        raise InputError(f"invalid --sbatch-arg {arg!r}: must be one line")
    name = _option_name(arg)
    if name in _RESERVED:
        instead = _RESERVED[name]
        hint = "expq sets it itself" if instead == "expq's own" else f"use expq's {instead} instead"
        raise InputError(f"invalid --sbatch-arg {arg!r}: {hint}")
    if name in _GPU_OPTIONS and gpus_per_worker > 0:
        raise InputError(f"invalid --sbatch-arg {arg!r} with --gpus-per-worker {gpus_per_worker}: "
                         "ask for GPUs one way only")


# -- the script -----------------------------------------------------------------------------------

def root_comment(root: Path) -> str:
    """The ``--comment`` that marks an array job as serving ``root`` (symlinks resolved)."""
    return COMMENT_PREFIX + str(root.resolve())


def logs_dir(root: Path) -> Path:
    return root / "slurm" / "logs"


def worker_command(array: WorkerArray) -> list[str]:
    """``python -m expq --root ROOT worker ...`` as each task runs it."""
    command = [array.python, "-m", "expq", "--root", str(array.root), "worker",
               "--gpus", "auto" if array.wants_gpus else "none"]
    if array.drain:
        command.append("--drain")
    if array.slots_per_worker is not None:
        command += ["--slots", str(array.slots_per_worker)]
    command += ["--grace", f"{array.grace:g}"]
    if array.lease_timeout is not None:
        command += ["--lease-timeout", f"{array.lease_timeout:g}"]
    return command


def sbatch_options(array: WorkerArray) -> list[str]:
    """The ``#SBATCH`` options, expq's own first, then the user's ``--sbatch-arg`` ones verbatim."""
    options = [f"--job-name={JOB_NAME}", f"--array=0-{array.workers - 1}", "--nodes=1", "--ntasks=1",
               f'--comment="{root_comment(array.root)}"', f'--chdir="{array.root}"',
               f'--output="{logs_dir(array.root)}/%A_%a.out"',
               f"--signal=B:{WARNING_SIGNAL}@{array.signal_lead}"]
    if array.gpus_per_worker > 0:
        options.append(f"--gres=gpu:{array.gpus_per_worker}")
    if array.cpus_per_worker is not None:
        options.append(f"--cpus-per-task={array.cpus_per_worker}")
    if array.mem is not None:
        options.append(f"--mem={array.mem}")
    if array.partition is not None:
        options.append(f"--partition={array.partition}")
    if array.time is not None:
        options.append(f"--time={array.time}")
    return options + list(array.sbatch_args)


def script(array: WorkerArray, path: Path | None, created_at: float, kill_wait_s: int | None) -> str:
    """The batch script; ``path`` is where it will be saved (named in its reuse hint)."""
    lines = ["#!/bin/bash"] + [f"#SBATCH {option}" for option in sbatch_options(array)]
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(created_at))
    kill_wait_text = f"the cluster's KillWait is {kill_wait_s} s" if kill_wait_s is not None else \
        "KillWait could not be read; it is often 30 s"
    lines += [
        "#",
        f"# {array.workers} expq worker(s) for {array.root}, written by `expq slurm start` at {stamp}.",
        f"# Submit it again as it is with: sbatch {shlex.quote(str(path))}" if path else "# (--dry-run: not saved)",
        "#",
        "# exec: the worker becomes the batch step's main process, so the time-limit warning",
        f"# (SIG{WARNING_SIGNAL}, {array.signal_lead} s ahead) and scancel's SIGTERM reach it. It then stops claiming,",
        f"# SIGTERMs its jobs, SIGKILLs them after --grace {array.grace:g} s ({kill_wait_text}),",
        "# re-queues them without spending a retry and exits 0.",
        "unset EXPQ_HOST  # a host name override exported by the submitting shell would make every node one host",
        "exec " + shlex.join(worker_command(array)),
    ]
    return "\n".join(lines) + "\n"


def parse_squeue(text: str) -> list[SlurmTask]:
    """Parse ``squeue -h -r -o SQUEUE_FORMAT``; the comment comes last, since it may contain ``|``."""
    tasks = []
    for line in text.splitlines():
        fields = line.split("|", 8)
        if len(fields) != 9:
            continue
        job_id, array_job, own_id, state, node, elapsed, limit, reason, comment = fields
        tasks.append(SlurmTask(job_id, array_job, own_id, state, node, elapsed, limit, reason, comment.strip()))
    return tasks



def belongs_to(task: SlurmTask, root: Path) -> bool:
    return task.comment == root_comment(root)


# -- the calls to SLURM ---------------------------------------------------------------------------

def require_tool(name: str) -> str:
    """The path of a SLURM command.

    Raises:
        SlurmError: not on PATH.
    """
    path = shutil.which(name)
    if path is None:
        raise SlurmError(f"{name} not found on PATH: run this where SLURM's commands are installed "
                         "(a login node, or after `module load slurm`)")
    return path


def _call(args: list[str]) -> subprocess.CompletedProcess[str]:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=_TOOL_TIMEOUT, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise SlurmError(f"{Path(args[0]).name} did not answer within {_TOOL_TIMEOUT:g} s") from None
    if done.returncode != 0:
        message = " ".join(done.stderr.split()) or f"exit code {done.returncode}"
        raise SlurmError(f"{Path(args[0]).name} failed: {message}")
    return done


def kill_wait() -> int | None:
    """The cluster's KillWait in seconds (from ``scontrol show config``), or None when unknown."""
    scontrol = shutil.which("scontrol")
    if scontrol is None:
        return None
    try:
        out = _call([scontrol, "show", "config"]).stdout
    except SlurmError:
        return None
    match = re.search(r"^KillWait\s*=\s*(\d+)", out, re.MULTILINE)
    return int(match.group(1)) if match else None


def submit(script_path: Path) -> str:
    """``sbatch --parsable SCRIPT``; returns the job id.

    Raises:
        SlurmError: sbatch is missing or refused the job.
    """
    out = _call([require_tool("sbatch"), "--parsable", str(script_path)]).stdout
    return out.strip().split(";")[0]


def list_tasks(user: str) -> list[SlurmTask]:
    """The user's expq worker tasks in squeue, one per array task (pending ones too).

    Raises:
        SlurmError: squeue is missing or failed.
    """
    out = _call([require_tool("squeue"), "-h", "-r", "-u", user, "-n", JOB_NAME, "-o", SQUEUE_FORMAT]).stdout
    return parse_squeue(out)


def stop_tasks(tasks: list[SlurmTask], force: bool) -> list[tuple[SlurmTask, str]]:
    """Stop worker tasks; returns what was done to each.

    A running worker gets SIGTERM alone (``scancel --batch``): it re-queues its jobs and exits 0 in
    its own time, with no KillWait deadline. Pending tasks, and every task with ``force``, are
    cancelled outright (SIGTERM to all their processes, SIGKILL after KillWait).

    Raises:
        SlurmError: scancel is missing or failed.
    """
    scancel = require_tool("scancel")
    running = [t for t in tasks if t.state == "RUNNING" and not force]
    others = [t for t in tasks if t not in running]
    if running:
        _call([scancel, "--batch", "--signal=TERM", *(t.job_id for t in running)])
    if others:
        _call([scancel, *(t.job_id for t in others)])
    return [(t, "signalled (SIGTERM: re-queue jobs, exit)") for t in running] + [
        (t, "cancelled" + (" (was pending)" if t.state == "PENDING" else "")) for t in others]
