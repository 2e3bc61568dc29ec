"""The ``expq`` command line: argparse, one thin handler per command, errors turned into exit codes.

Start-up time matters (``expq status`` in a watch loop, ``expq submit`` per sweep), so this module
and every command module it registers import nothing heavy at module level: no numpy, matplotlib,
psutil, filelock or yaml. Handlers import what they need when they run.

Adding a command: write a module with ``register(subparsers)`` and ``run(args) -> int`` and list it,
with the names of the commands it registers, in ``COMMAND_MODULES``. Every command gets ``--root``
and a resolved ``args.root`` (a ``Path``).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NoReturn

from expq.errors import ExpqError, InputError
from expq.launcher.argtypes import job_id, positive_seconds, state_name, whole_number
from expq.launcher.entry import command_word
from expq.launcher.selectors import tag
from expq.launcher.terminal import terminal_width

if TYPE_CHECKING:
    from expq.queue.store import JobQueue
    from expq.worker.loop import WorkerOptions

__all__ = ["main", "build_parser", "named_command", "worker_options", "COMMAND_MODULES"]

at_least_one = whole_number(1, None, "a whole number >= 1")
_JOBS_PER_GPU = whole_number(1, 64, "a whole number from 1 to 64")


def gpu_size(text: str) -> int:
    """An argparse type for a memory size in binary units (``12G``, ``500M``), or ``0``."""
    from expq.queue.spec import parse_size  # light: json, re and dataclasses

    if text.strip() == "0":
        return 0
    try:
        return parse_size(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None

# Modules that add commands with ``register(subparsers)`` / ``run(args) -> int``, in the order
# ``expq --help`` lists them, with the commands each adds ("cli": the commands defined in this
# module). A command line that names one imports and builds only its module's parsers: 20-30 ms
# of every command's start-up (a worker's too).
COMMAND_MODULES: dict[str, tuple[str, ...]] = {
    "expq.launcher.init_command": ("init",),
    "expq.launcher.submit": ("submit",),
    "cli": ("status", "show", "cancel", "retry", "worker"),
    "expq.launcher.logs": ("logs",),
    "expq.launcher.plot_command": ("plot",),
    "expq.launcher.slurm_command": ("slurm",),
    "expq.launcher.runs_command": ("runs",),
    "expq.launcher.ui_command": ("ui",),
    "expq.launcher.export_command": ("export", "tensorboard"),
    "expq.launcher.gpus_command": ("gpus",),
    "expq.launcher.wait_command": ("wait",),
    "expq.launcher.tags_command": ("tag", "note"),
    "expq.launcher.rm_command": ("rm", "gc"),
    "expq.launcher.workers_command": ("workers",),
}

ROOT_HELP = "the expq root holding queue/ and experiments/ (default: $EXPQ_ROOT, else ./expq-root)"


class _Formatter(argparse.HelpFormatter):
    """argparse's own layout; the width found without shutil (see ``terminal``), 80 columns when
    stdout is no terminal, as argparse does."""

    def __init__(self, prog: str, indent_increment: int = 2, max_help_position: int = 24,
                 width: int | None = None) -> None:
        super().__init__(prog, indent_increment, max_help_position,
                         terminal_width(80) - 2 if width is None else width)


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line on stderr and exit code 2."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", _Formatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"expq: error: {message} (see '{self.prog} --help')\n")


def _add_root(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: a sub-command without --root must not overwrite a --root given before the command.
    if "--root" not in parser._option_string_actions:  # a command module may have added its own
        parser.add_argument("--root", default=argparse.SUPPRESS, metavar="DIR", help=ROOT_HELP)


# -- the commands that live here: status, show, cancel, retry, worker -----------------------------

def _register_builtin(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("status", help="counts per state and a table of jobs",
                       description="Counts per state (of the matching jobs), then a table: the running jobs, the next 50 "
                                   "pending ones (in the order they will run) and the 10 most recently finished.")
    p.add_argument("ids", nargs="*", type=job_id, metavar="ID", help="only these jobs")
    p.add_argument("--json", action="store_true", help="every matching job as JSON, one job per line (a stable format)")
    p.add_argument("--state", action="append", default=[], metavar="STATE", type=state_name,
                   help="only jobs in this state (repeatable): pending, running, done, failed, cancelled")
    p.add_argument("--experiment", metavar="NAME", help="only jobs of this experiment")
    p.add_argument("--tag", metavar="TAG", type=tag, help="only jobs with this tag (see expq tag)")
    p.add_argument("--all", action="store_true", help="every job, not only running, next and recent ones")
    p.add_argument("--watch", nargs="?", const=2.0, type=positive_seconds, metavar="DURATION",
                   help="redraw every SECONDS (default 2) until Ctrl-C")
    p.set_defaults(run=_run_status)

    p = sub.add_parser("show", help="the spec, config, paths, attempts and result of one job")
    p.add_argument("id", type=job_id, metavar="ID")
    p.add_argument("--json", action="store_true", help="as JSON")
    p.set_defaults(run=_run_show)

    p = sub.add_parser("cancel", help="cancel pending or running jobs")
    p.add_argument("ids", nargs="+", type=job_id, metavar="ID")
    p.set_defaults(run=_run_cancel)

    p = sub.add_parser("retry", help="re-enqueue failed or cancelled jobs")
    p.add_argument("ids", nargs="+", type=job_id, metavar="ID")
    p.set_defaults(run=_run_retry)

    p = sub.add_parser("worker", help="run queued jobs until stopped",
                       description="Claim and run jobs, each in its own process group with its own GPUs.")
    p.add_argument("--gpus", default="auto", metavar="auto|none|0,1,..",
                   help="GPUs this worker may hand out (default auto: $CUDA_VISIBLE_DEVICES, else nvidia-smi)")
    p.add_argument("--slots", type=at_least_one, default=None, metavar="N",
                   help="jobs run at once (default: GPUs x --jobs-per-gpu, or 1 without GPUs)")
    p.add_argument("--jobs-per-gpu", type=_JOBS_PER_GPU, default=1, metavar="K",
                   help="how many --gpu-mem jobs may share one GPU (default 1: no sharing)")
    p.add_argument("--foreign-mem", type=gpu_size, default=500 << 20, metavar="SIZE",
                   help="no job starts on a GPU where a process that is no expq job holds more than this "
                        "(default 500M)")
    p.add_argument("--ignore-foreign", action="store_true",
                   help="start jobs on GPUs whatever other processes hold there")
    p.add_argument("--probe-timeout", type=positive_seconds, default=10.0, metavar="SECONDS",
                   help="a GPU probe (NVML or nvidia-smi) taking longer counts as failed (default 10)")
    p.add_argument("--drain", action="store_true", help="exit 0 once nothing is runnable")
    p.add_argument("--detach", action="store_true",
                   help="run in the background (log in ROOT/queue/workers/ID.log); print the worker id")
    p.add_argument("--max-jobs", type=at_least_one, default=None, metavar="N", help="exit after N jobs")
    p.add_argument("--poll", type=positive_seconds, default=0.5, metavar="SECONDS",
                   help="how often to look for jobs (default 0.5; an idle worker backs off to 2 s and "
                        "is woken by a submit on this host)")
    p.add_argument("--heartbeat", type=positive_seconds, default=5.0, metavar="SECONDS",
                   help="how often to refresh this worker's heartbeat (default 5)")
    p.add_argument("--lease-timeout", type=positive_seconds, default=60.0, metavar="SECONDS",
                   help="a worker on another host silent this long is presumed dead (default 60)")
    p.add_argument("--grace", type=positive_seconds, default=10.0, metavar="SECONDS",
                   help="between TERM and KILL when stopping a job (default 10)")
    p.set_defaults(run=_run_worker)


def _open_queue(args: argparse.Namespace) -> JobQueue:
    from expq.queue.store import JobQueue  # lazily: start-up time

    return JobQueue(args.root).require()


def _run_status(args: argparse.Namespace) -> int:
    from expq.fan_out import helpers_for_this_machine
    from expq.launcher import render, report

    if args.watch is not None and args.json:
        raise InputError("--watch cannot be combined with --json")
    queue = _open_queue(args)
    query = report.Query(ids=tuple(args.ids), states=tuple(args.state), experiment=args.experiment,
                         everything=args.all or args.json, tag=args.tag)
    if args.json:
        from expq.launcher.status_json import write_status_json

        counts, blocks = report.stream(queue, query)
        sys.stdout.flush()
        write_status_json(sys.stdout.buffer, counts, blocks)
        sys.stdout.buffer.flush()
        return 0
    helpers = helpers_for_this_machine()  # for --experiment, which reads every spec
    if args.watch is None:
        _write(render.status_text(report.collect(queue, query, helpers=helpers), terminal_width()))
        return 0
    members = report.Members(args.experiment) if args.experiment is not None else None  # specs read once
    return render.watch(lambda: render.status_text(report.collect(queue, query, helpers=helpers, members=members),
                                                   terminal_width()), args.watch, sys.stdout)


def _run_show(args: argparse.Namespace) -> int:
    from expq.launcher import render, report

    details = report.show(_open_queue(args), args.id)
    _write(render.to_json(details) if args.json else render.show_text(details))
    return 0


def _run_cancel(args: argparse.Namespace) -> int:
    from expq.queue.control import cancel

    for job, what in cancel(_open_queue(args), args.ids).items():
        _write(f"{job} {what}\n")
    return 0


def _run_retry(args: argparse.Namespace) -> int:
    from expq.queue.control import retry

    for job in retry(_open_queue(args), args.ids):
        _write(f"{job}\n")
    return 0


def _run_worker(args: argparse.Namespace) -> int:
    if args.detach:
        from expq.launcher.detach import detach

        argv = [word for word in args.argv if word != "--detach"]
        _write(detach(args.root, ["--root", str(args.root), *argv]) + "\n")
        return 0
    from expq.worker.main import run_worker  # the worker and its psutil only when a worker starts

    return run_worker(args.root, args.gpus, worker_options(args))


def worker_options(args: argparse.Namespace) -> WorkerOptions:
    """The one place that reads ``expq worker``'s argparse attributes (range-checked by their types);
    the GPUs stay unresolved here: ``--gpus`` is resolved by the worker once its log is set up."""
    from expq.worker.loop import WorkerOptions

    return WorkerOptions(slots=args.slots, drain=args.drain, max_jobs=args.max_jobs, poll=args.poll,
                         heartbeat=args.heartbeat, lease_timeout=args.lease_timeout, grace=args.grace,
                         jobs_per_gpu=args.jobs_per_gpu, foreign_mem=args.foreign_mem,
                         ignore_foreign=args.ignore_foreign, probe_timeout=args.probe_timeout)


def _write(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


# -- parser and main ----------------------------------------------------------------------------

def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or only what parsing ``command``'s line needs (its module's commands);
    command modules are imported here, so they must be cheap to import."""
    parser = _Parser(prog="expq", description="A filesystem job queue for experiments.")
    parser.add_argument("--root", default=None, metavar="DIR", help=ROOT_HELP)
    sub = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    for module_name, commands in COMMAND_MODULES.items():
        if command is not None and command not in commands:
            continue
        if module_name == "cli":
            _register_builtin(sub)
            continue
        module = importlib.import_module(module_name)
        before = set(sub.choices)
        module.register(sub)
        for name in set(sub.choices) - before:
            if sub.choices[name].get_default("run") is None:
                sub.choices[name].set_defaults(run=module.run)
    for command_parser in set(sub.choices.values()):
        _add_root(command_parser)
    return parser


def named_command(argv: Sequence[str]) -> str | None:
    """The command a command line names (its first word that is neither an option nor ``--root``'s
    value), or None: then the whole parser is needed (``--help``, no command, an unknown one)."""
    word = command_word(argv)
    return word if word is not None and any(word in commands for commands in COMMAND_MODULES.values()) else None


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command and return its exit code: 0 ok, 2 bad usage or input, 1 anything else."""
    from expq.launcher.completion import autocomplete
    from expq.launcher.defaults import apply_file_defaults, find_file

    words = list(sys.argv[1:] if argv is None else argv)
    # expq.toml's tables are checked against every command, and a completing shell may ask about any
    defaults = find_file(words)
    whole = defaults is not None or "_ARGCOMPLETE" in os.environ
    parser = build_parser(None if whole else named_command(words))
    autocomplete(parser)  # answers a completing shell and exits; nothing otherwise
    try:
        if defaults is not None:
            apply_file_defaults(parser, words)
    except ExpqError as exc:  # a bad expq.toml: one line, before the command does anything
        sys.stderr.write(f"expq: error: {exc}\n")
        return exc.exit_code
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed as one line
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 2)
    if args.command is None:
        parser.print_usage(sys.stderr)
        sys.stderr.write("expq: error: a command is required (see 'expq --help')\n")
        return 2
    from expq.contract import resolve_root

    args.root = resolve_root(args.root)
    args.argv = list(sys.argv[1:] if argv is None else argv)  # `worker --detach` runs the same command again
    run: Callable[[argparse.Namespace], int] = args.run
    try:
        return run(args)
    except ExpqError as exc:
        sys.stderr.write(f"expq: error: {exc}\n")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("expq: interrupted\n")
        return 130
    except BrokenPipeError:  # `expq status | head`: the reader left, which is not an error
        _silence_stdout()
        return 0
    except OSError as exc:  # a filesystem failure (disk full, permissions): not a bug of expq
        _debug_traceback()
        sys.stderr.write(f"expq: error: {exc}\n")
        return 1
    # One of the three broad excepts the project allows: the CLI boundary. Anything else is a bug;
    # the user gets one line (the traceback with EXPQ_DEBUG=1) and exit code 1, never a raw traceback.
    except Exception as exc:  # noqa: BLE001
        _debug_traceback()
        sys.stderr.write(f"expq: internal error: {type(exc).__name__}: {exc} (set EXPQ_DEBUG=1 for the traceback)\n")
        return 1


def _debug_traceback() -> None:
    if os.environ.get("EXPQ_DEBUG") == "1":
        import traceback

        traceback.print_exc(file=sys.stderr)


def _silence_stdout() -> None:
    # Python flushes stdout at exit; point it at /dev/null so that flush does not raise again.
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a real file (pytest capture): nothing to redirect
        return
    finally:
        os.close(devnull)
