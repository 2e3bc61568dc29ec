"""``expq submit``: turn a command, or a sweep of it, into job specs in the queue.

Everything the user gave is checked first (names, options, config files, sweeps, placeholders,
``--after`` ids); only then are ids allocated (one lock for the whole sweep) and the specs written
(one ``syncfs``, not one fsync per file). A bad value anywhere leaves the queue untouched.

Module level imports stay light (the parser imports this module for ``expq --help``); yaml, filelock
and the queue come in when the command runs.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from expq.errors import InputError, NotFound
from expq.launcher.argtypes import clean_text, count, env_pair, positive_seconds, whole_number
from expq.launcher.selectors import job_ids, tag
from expq.queue.spec import MAX_PRIORITY, parse_size  # light: json and dataclasses

if TYPE_CHECKING:
    from expq.queue.spec import JobSpec
    from expq.queue.states import State
    from expq.queue.store import JobQueue

_PRIORITY = whole_number(-MAX_PRIORITY, MAX_PRIORITY, f"a whole number from -{MAX_PRIORITY} to {MAX_PRIORITY}")

__all__ = ["register", "run", "submit", "submit_all", "plan", "build_specs", "request_from_args", "Plan",
           "JobOptions", "SubmitRequest", "Submitted", "default_name"]

# Programs that run a script: the script, not the program, names the job (`python train.py` -> train.py).
_INTERPRETERS = re.compile(r"(python[0-9.]*|pypy[0-9.]*|bash|sh|zsh|dash|node|Rscript|julia|perl|ruby|env|"
                           r"nice|nohup|time|srun|mpirun|torchrun|deepspeed)")
_RUNNERS = {"uv": "run", "poetry": "run", "pipenv": "run", "conda": "run", "accelerate": "launch"}  # `uv run x.py`
_NUMBER = re.compile(r"[-+]?[0-9.]+")


def _gpu_mem(text: str) -> int:
    """The argparse type of ``--gpu-mem``: a size in binary units."""
    try:
        return parse_size(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "submit", help="queue a command, or a sweep of it; prints the new job ids",
        usage="expq submit [options] -- COMMAND [ARGS...]",
        description="Queue COMMAND, once or once per point of a --sweep. Placeholders {key} and {a.b} in "
                    "the command are filled from each job's config. Prints the new job ids, one per line.")
    p.add_argument("--experiment", default="default", metavar="NAME", type=clean_text,
                   help="the experiment the jobs belong to (default: default)")
    p.add_argument("--name", metavar="NAME", type=clean_text, help="run name (default: the sweep values, else the script name)")
    p.add_argument("--config", action="append", default=[], metavar="FILE",
                   help="YAML or JSON config file; repeatable, merged in order")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="set a config value (dotted key, YAML value); repeatable, applied after --config")
    p.add_argument("--sweep", action="append", default=[], metavar="KEY=V1,V2,...",
                   help="one job per value (or range(START,STOP[,STEP])); repeatable: the Cartesian product")
    p.add_argument("--gpus", type=count("--gpus"), default=0, metavar="N", help="GPUs each job needs (default 0)")
    p.add_argument("--gpu-mem", type=_gpu_mem, default=None, metavar="SIZE",
                   help="GPU memory each job needs on each of its GPUs (12G, 500M: binary units); such jobs may "
                        "share a GPU (worker --jobs-per-gpu); implies --gpus 1 when --gpus is not given")
    p.add_argument("--priority", type=_PRIORITY, default=0, metavar="P",
                   help=f"-{MAX_PRIORITY}..{MAX_PRIORITY}; higher runs first (default 0)")
    p.add_argument("--retries", type=count("--retries"), default=0, metavar="N",
                   help="run a failed job again up to N times (default 0)")
    p.add_argument("--timeout", type=positive_seconds, default=None, metavar="DURATION",
                   help="kill a job running longer than this (90, 90s, 2h30m, 1d; default: no limit)")
    p.add_argument("--after", action="append", default=[], type=job_ids, metavar="IDS",
                   help="run only after these jobs are done (12, 3,4,5 or 3-40); cancelled if one fails (repeatable)")
    p.add_argument("--after-experiment", action="append", default=[], metavar="NAME", type=clean_text,
                   help="run only after every job of experiment NAME queued so far is done (repeatable)")
    p.add_argument("--skip-existing", action="store_true",
                   help="queue only the jobs whose experiment, command and config match no pending, running or "
                        "done job; the covering ids go to stderr")
    p.add_argument("--strict", action="store_true",
                   help="fail a job that used the experiment API but never read some of its config keys")
    p.add_argument("--tag", action="append", default=[], type=tag, metavar="TAG",
                   help="label the jobs (repeatable; see expq tag)")
    p.add_argument("--env", action="append", default=[], type=env_pair, metavar="KEY=VALUE",
                   help="environment variable for the job (repeatable)")
    p.add_argument("--cwd", metavar="DIR", help="working directory of the job (default: the current one)")
    p.add_argument("--wait", action="store_true",
                   help="show progress until the jobs end; exit 1 if any failed or was cancelled")
    p.add_argument("command", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    p.set_defaults(run=run)


# -- planning: everything checked, nothing written ----------------------------------------------

@dataclass(frozen=True)
class Plan:
    """One job to create, before it has an id."""

    name: str
    command: list[str]
    config: dict[str, Any]
    placeholders: tuple[str, ...] = ()  # config keys the command's placeholders read


@dataclass(frozen=True)
class JobOptions:
    """What all jobs of one submit share besides command, name and config (the library's view of the options)."""

    experiment: str = "default"
    gpus: int = 0
    priority: int = 0
    retries: int = 0
    timeout: float | None = None
    after: tuple[int, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: str | None = None
    strict: bool = False
    gpu_mem: int | None = None  # bytes on each GPU; None: whole GPUs


@dataclass(frozen=True)
class SubmitRequest:
    """A whole ``expq submit``: the command with its placeholders, where its config comes from, the options."""

    command: tuple[str, ...]
    options: JobOptions = field(default_factory=JobOptions)
    name: str | None = None
    configs: tuple[str, ...] = ()
    sets: tuple[str, ...] = ()
    sweeps: tuple[str, ...] = ()
    after_experiments: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    skip_existing: bool = False


@dataclass(frozen=True)
class Submitted:
    """What a submit did: the new ids, and each skipped job with the id (and state) that covers it."""

    ids: list[int]
    skipped: list[tuple[Plan, int, State]] = field(default_factory=list)


def default_name(argv: Sequence[str]) -> str:
    """The run name of a job without ``--name`` or sweep: its script, e.g. ``train.py``.

    Interpreters and launchers (``python``, ``torchrun``, ``uv run``), their options, numbers and
    ``KEY=VALUE`` words are passed over; ``python -m pkg.mod`` gives ``pkg.mod``.
    """
    from expq._fs import slug

    args = list(argv)
    i = 0
    while i < len(args):
        arg, base = args[i], os.path.basename(args[i].rstrip("/"))
        if arg == "-m" and i + 1 < len(args):
            return slug(args[i + 1])
        if _RUNNERS.get(base) is not None and args[i + 1 : i + 2] == [_RUNNERS[base]]:
            i += 2
            continue
        if arg.startswith("-") or "=" in arg or _INTERPRETERS.fullmatch(base) or _NUMBER.fullmatch(arg):
            i += 1
            continue
        return slug(base or arg)
    return slug(os.path.basename(args[0]))


def plan(request: SubmitRequest) -> list[Plan]:
    """Check every input and return one ``Plan`` per job; writes nothing.

    Raises:
        InputError: a bad name, option, config file, sweep or placeholder, or an empty command.
    """
    from expq import config
    from expq._fs import check_name
    from expq.launcher import sweep, template

    check_name("experiment", request.options.experiment)
    if request.name is not None:
        check_name("run", request.name)
    argv = list(request.command)
    if argv[:1] == ["--"]:
        argv = argv[1:]
    if not argv:
        raise InputError("no command given: expected expq submit [options] -- COMMAND [ARGS...]")
    if not argv[0]:
        raise InputError("invalid command: the program name is empty")
    base = config.resolve_config(list(request.configs), list(request.sets))
    sweeps = [sweep.parse_sweep(item) for item in request.sweeps]
    points = sweep.expand(base, sweeps)
    commands = template.render_all(argv, [point_config for point_config, _ in points])
    used = tuple(sorted(template.placeholders(argv)))
    fallback = default_name(argv) if not sweeps and request.name is None else ""
    plans = []
    for (point_config, values), command in zip(points, commands):
        name = sweep.run_name(values)
        if request.name is not None:
            name = f"{request.name}-{name}" if name else request.name
        plans.append(Plan(check_name("run", name or fallback), command, point_config, used))
    return plans


def _login_name() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in the environment nor in the password database
        return str(os.getuid())


def check_options(queue: JobQueue, options: JobOptions) -> str:
    """Check the options against the queue and the filesystem; returns the absolute cwd. Writes nothing.

    Raises:
        InputError: a bad experiment name. NotFound: ``--after`` a job that does not exist, or a
            ``cwd`` that is not a directory.
    """
    from expq._fs import check_name

    check_name("experiment", options.experiment)
    cwd = os.path.abspath(options.cwd if options.cwd is not None else os.getcwd())
    if not os.path.isdir(cwd):
        raise NotFound("directory for --cwd", options.cwd)
    after = tuple(dict.fromkeys(options.after))
    if after:
        if not queue.exists():
            raise NotFound("job", after[0])
        queue.check_ids_exist(after)
    return cwd


def build_specs(root: str | os.PathLike[str] | None, plans: Sequence[Plan], options: JobOptions) -> list[JobSpec]:
    """Check the options against the queue, allocate one id per plan and return the specs, not yet queued.

    The caller may prepare files in the specs' run directories before ``JobQueue.enqueue(specs)``
    makes them visible to workers (the executor writes the pickled call there).

    Raises:
        InputError: a bad experiment name. NotFound: ``--after`` a job that does not exist, or a
            ``cwd`` that is not a directory.
    """
    from expq.queue.fingerprints import fingerprint_of
    from expq.queue.ids import allocate_ids
    from expq.queue.spec import JobSpec
    from expq.queue.store import JobQueue

    if options.gpu_mem is not None and (isinstance(options.gpu_mem, bool) or options.gpu_mem <= 0):
        raise InputError(f"invalid gpu_mem {options.gpu_mem!r}: expected a positive number of bytes")
    queue = JobQueue(root)
    cwd = check_options(queue, options)
    after = tuple(dict.fromkeys(options.after))
    env = dict(options.env)
    user = _login_name()
    queue.create()
    ids = allocate_ids(queue.paths, len(plans))
    now = time.time()
    prefix = f"experiments/{options.experiment}/"
    return [JobSpec(id=job, experiment=options.experiment, name=p.name, command=tuple(p.command),
                    run_dir=f"{prefix}{job}-{p.name}", cwd=cwd, submitted_at=now, config=p.config,
                    gpus=max(options.gpus, 1) if options.gpu_mem is not None else options.gpus,
                    gpu_mem=options.gpu_mem, priority=options.priority, retries=options.retries,
                    timeout=options.timeout, after=after, env=env, user=user,
                    fingerprint=fingerprint_of(options.experiment, p.command, p.config), placeholders=p.placeholders,
                    strict=options.strict)
            for job, p in zip(ids, plans)]


def submit(root: str | os.PathLike[str] | None, request: SubmitRequest) -> list[int]:
    """Validate everything, then allocate ids and enqueue; returns the new ids.

    Raises:
        InputError: bad input (nothing written). NotFound: ``--after`` a job that does not exist,
            or a ``--cwd`` that is not a directory.
    """
    return submit_all(root, request).ids


def submit_all(root: str | os.PathLike[str] | None, request: SubmitRequest, helpers: int = 0) -> Submitted:
    """``submit`` that also reports the jobs ``skip_existing`` left out and the ids covering them.
    ``--after-experiment`` reads every spec, with ``helpers`` forked processes (``fan_out``: only from
    a process without other threads, as the CLI is).

    Under the fingerprint index's lock: look up the earlier jobs, allocate ids, record the new
    fingerprints, write the tags, enqueue. Concurrent submits of one sweep thus queue it once.

    Raises:
        InputError, NotFound: as ``submit``; also ``--after-experiment`` of an experiment without jobs.
    """
    from expq.queue import fingerprints
    from expq.queue.labels import check_tag, update_labels
    from expq.queue.store import JobQueue

    plans = plan(request)
    for label in request.tags:
        check_tag(label)
    queue = JobQueue(root)
    options = request.options
    if request.after_experiments:
        options = replace(options, after=(*options.after,
                                          *_experiment_jobs(queue, request.after_experiments, helpers)))
    skipped: list[tuple[Plan, int, State]] = []
    if not plans:
        return Submitted([], skipped)
    check_options(queue, options)  # before the lock, which creates the queue's folders
    queue.create()
    with fingerprints.locked(queue.paths):
        if request.skip_existing:
            plans, skipped = _skip_existing(queue, options.experiment, plans)
        specs = build_specs(root, plans, options) if plans else []
        fingerprints.record(queue.paths, [(spec.fingerprint, spec.id) for spec in specs])
        for spec in specs if request.tags else ():
            update_labels(queue.paths.run(spec.run_dir).dir, add=request.tags)
        return Submitted(queue.enqueue(specs), skipped)


def _experiment_jobs(queue: JobQueue, experiments: Sequence[str], helpers: int) -> tuple[int, ...]:
    from expq.queue.selection import jobs_of_experiment

    ids: list[int] = []
    for name in experiments:
        found = jobs_of_experiment(queue, name, helpers=helpers) if queue.exists() else {}
        if not found:
            raise NotFound("experiment with queued jobs", name)
        ids += found
    return tuple(ids)


def _skip_existing(queue: JobQueue, experiment: str, plans: Sequence[Plan]
                   ) -> tuple[list[Plan], list[tuple[Plan, int, State]]]:
    """Split the plans into those to queue and those covered by a pending, running or done job with
    the same fingerprint (the newest such job covers it). Costs one readlink per plan plus a stat
    per id found: never a read of the queue's specs."""
    from expq.queue.fingerprints import fingerprint_of, lookup
    from expq.queue.states import State

    prints = [fingerprint_of(experiment, p.command, p.config) for p in plans]
    recorded = lookup(queue.paths, prints)
    where = _states_of(queue, {job for ids in recorded.values() for job in ids})
    keep: list[Plan] = []
    skipped: list[tuple[Plan, int, State]] = []
    for p, fp in zip(plans, prints):
        live = [(job, where[job]) for job in recorded.get(fp, ())
                if where.get(job) in (State.PENDING, State.RUNNING, State.DONE)]
        if live:
            skipped.append((p, *live[-1]))
        else:
            keep.append(p)
    return keep, skipped


def _states_of(queue: JobQueue, ids: set[int]) -> dict[int, State]:
    """The state of each id: a few stats each for a handful, the five listings for many (a 10,000-job
    resubmit: 30,000 stats took 3.7 s, the listings take a fraction of that)."""
    from expq.queue.paths import job_id_of
    from expq.queue.states import State

    if len(ids) <= 500:
        return {job: found[0] for job, found in queue.locate_many(ids).items()}
    states: dict[int, State] = {}
    for state in State:  # the order jobs move in: one moving meanwhile is seen, in its later state
        for name in queue.list_names(state):
            try:
                job = job_id_of(name)
            except ValueError:
                continue
            if job in ids:
                states[job] = state
    return states


def request_from_args(args: argparse.Namespace) -> SubmitRequest:
    """The one place that reads ``expq submit``'s argparse attributes."""
    after = tuple(dict.fromkeys(job for ids in args.after for job in ids))
    options = JobOptions(experiment=args.experiment, gpus=args.gpus, priority=args.priority, retries=args.retries,
                         timeout=args.timeout, after=after, env=dict(args.env), cwd=args.cwd, strict=args.strict,
                         gpu_mem=args.gpu_mem)
    return SubmitRequest(command=tuple(args.command), options=options, name=args.name, configs=tuple(args.config),
                         sets=tuple(args.set), sweeps=tuple(args.sweep),
                         after_experiments=tuple(args.after_experiment), tags=tuple(args.tag),
                         skip_existing=args.skip_existing)


def run(args: argparse.Namespace) -> int:
    from expq.fan_out import helpers_for_this_machine

    done = submit_all(args.root, request_from_args(args), helpers=helpers_for_this_machine())
    ids = done.ids
    if done.skipped:
        sys.stderr.write("".join(f"expq: skipped {p.name}: covered by job {job} ({state.value})\n"
                                 for p, job, state in done.skipped))
        sys.stderr.flush()
    sys.stdout.write("".join(f"{job}\n" for job in ids))
    sys.stdout.flush()
    if not args.wait:
        return 0
    from expq.launcher.wait_command import wait_jobs
    from expq.queue.store import JobQueue

    try:
        return wait_jobs(JobQueue(args.root), ids, None, sys.stderr)
    except KeyboardInterrupt:  # stop watching; the jobs are queued and stay so
        sys.stderr.write("\nexpq: stopped waiting; the jobs stay queued (see expq status)\n")
        return 130
