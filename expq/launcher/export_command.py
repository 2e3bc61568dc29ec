"""``expq export tensorboard|mlflow`` and ``expq tensorboard``: results into the tools researchers use.

Everything heavy (numpy, TensorBoard's protos, MLflow) is imported by the handlers, never here.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from expq.launcher.argtypes import port, positive_seconds

__all__ = ["register", "run"]

_TARGETS = "EXPERIMENT|RUN_PATH"
_ROOT_HELP = "the expq root holding experiments/ (default: $EXPQ_ROOT, else ./expq-root)"


def register(subparsers: Any) -> None:
    """Add ``export`` (sub-commands ``tensorboard`` and ``mlflow``) and ``tensorboard``."""
    export = subparsers.add_parser(
        "export", help="results into TensorBoard event files or MLflow runs",
        description="Export the metrics, config and outcome of runs. Re-running adds only what is new.")
    formats = export.add_subparsers(title="formats", dest="export_format", metavar="FORMAT", required=True)

    tb = formats.add_parser(
        "tensorboard", help="TensorBoard event files, one folder per run",
        description="Write each run's metrics as TensorBoard scalars and its config as HParams into "
                    "OUT/<run>/ (nested runs nested). Re-running appends only new points.")
    tb.add_argument("targets", nargs="+", metavar=_TARGETS,
                    help="an experiment name or folder (all its runs), or a run directory")
    tb.add_argument("--out", "-o", type=Path, required=True, metavar="DIR",
                    help="folder for the event files (then: tensorboard --logdir DIR)")
    tb.set_defaults(run=_run_export_tensorboard)

    ml = formats.add_parser(
        "mlflow", help="one MLflow run per expq run",
        description="Create or update one MLflow run per expq run, in an MLflow experiment of the same name: "
                    "params (flattened config), metrics with steps and times, tags, status and files/ as "
                    "artifacts. Re-running updates the same MLflow runs (tag expq.run_id).")
    ml.add_argument("targets", nargs="+", metavar=_TARGETS,
                    help="an experiment name or folder (all its runs), or a run directory")
    ml.add_argument("--tracking-uri", metavar="URI", default=None,
                    help="file:DIR, a bare folder, or http(s)://server (default: $MLFLOW_TRACKING_URI)")
    ml.set_defaults(run=_run_export_mlflow)
    for parser in (tb, ml):
        parser.add_argument("--root", default=argparse.SUPPRESS, metavar="DIR", help=_ROOT_HELP)

    serve = subparsers.add_parser(
        "tensorboard", help="start TensorBoard on an experiment's runs and print its URL",
        description="Export the runs of EXPERIMENT (into LOGDIR, incrementally), start TensorBoard on them and "
                    "print its URL. While it runs, new points are exported every --reload seconds. Ctrl-C stops it.")
    serve.add_argument("targets", nargs="+", metavar=_TARGETS, help="an experiment name or folder, or a run directory")
    serve.add_argument("--port", type=port, default=None,
                       help="port (default: TensorBoard's 6006, or the next free one; 0 picks any free one)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    serve.add_argument("--logdir", type=Path, default=None, metavar="DIR",
                       help="where the event files go (default: EXPERIMENT_DIR/.tensorboard)")
    serve.add_argument("--reload", type=positive_seconds, default=5.0, metavar="SECONDS",
                       help="re-export new points this often (default 5)")
    serve.set_defaults(run=_run_tensorboard)


def run(args: argparse.Namespace) -> int:
    """``expq export`` without a format: argparse asks for one, so this is never reached."""
    return 2  # pragma: no cover


def _run_export_tensorboard(args: argparse.Namespace) -> int:
    from expq.export.source import select_runs
    from expq.export.tensorboard_export import export_tensorboard

    report = export_tensorboard(select_runs(args.targets, args.root), args.out)
    changed = sum(1 for run in report.runs if run.points)
    _say(f"{report.points} new points of {changed} of {len(report.runs)} runs written to {report.out}")
    if report.nonfinite:
        _say(f"{report.nonfinite} of them are NaN or inf (exported as such)")
    _say(f"view them: tensorboard --logdir {report.out}")
    return 0


def _run_export_mlflow(args: argparse.Namespace) -> int:
    from expq.errors import InputError
    from expq.export.mlflow_export import export_mlflow
    from expq.export.source import select_runs

    uri = args.tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
    if not uri:
        raise InputError("give --tracking-uri (file:DIR or http://server) or set MLFLOW_TRACKING_URI")
    runs = select_runs(args.targets, args.root)
    report = export_mlflow(runs, uri)
    for note in report.notes:
        sys.stderr.write(f"expq: note: {note}\n")
    _say(f"{report.created} MLflow runs created, {report.updated} updated, {report.points} new metric points, "
         f"{report.artifacts} files uploaded, in experiment {report.experiment!r} at {report.tracking_uri}")
    if report.nonfinite:
        _say(f"{report.nonfinite} NaN or inf points skipped (MLflow refuses them)")
    for conflict in report.param_conflicts:
        sys.stderr.write(f"expq: warning: param {conflict} changed since the last export; MLflow keeps the first\n")
    return 0


def _run_tensorboard(args: argparse.Namespace) -> int:
    from expq.errors import ExpqError
    from expq.experiment.reading import StoredExperiment, open_path
    from expq.export.server import TensorBoardServer
    from expq.export.source import select_runs
    from expq.export.tensorboard_export import export_tensorboard, require_tensorboard

    require_tensorboard()
    runs = select_runs(args.targets, args.root)
    logdir = args.logdir
    if logdir is None:
        first = open_path(args.targets[0], root=args.root)
        folder = first.path if isinstance(first, StoredExperiment) else first.experiment_dir
        logdir = folder / ".tensorboard"
    export_tensorboard(runs, logdir)
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    server = TensorBoardServer(logdir, args.host, args.port, args.reload)
    try:
        url = server.start(echo=_echo, cancel=stop)
        if url is None:  # Ctrl-C while it was starting
            return 0
        _say(url)
        sys.stderr.write(f"expq: TensorBoard (pid {server.pid}) serves {logdir}; new points every "
                         f"{args.reload:g} s; Ctrl-C stops it\n")
        while server.running() and not stop.wait(args.reload):
            export_tensorboard(select_runs(args.targets, args.root), logdir)
        if not stop.is_set():
            raise ExpqError(f"TensorBoard exited: {' | '.join(server.output)[-400:]}")
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def _echo(line: str) -> None:
    sys.stderr.write(line + "\n")


def _say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()
