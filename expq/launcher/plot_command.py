"""``expq plot EXPERIMENT --metric loss [--metric acc] [--group-by KEY] [--output FILE]``: one image, many runs."""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    """Add the ``plot`` sub-command (``--root`` is added and resolved by the caller)."""
    parser = subparsers.add_parser(
        "plot",
        help="draw metrics of an experiment's runs (one axis per metric, optionally grouped)",
        description="Draw one or more metrics of every run of EXPERIMENT, one axis per metric, runs in natural "
                    "order, legend outside the axes (PNG by default). --group-by KEY draws one line per value of "
                    "config KEY: the mean across its runs and a band from their min to their max.",
    )
    parser.add_argument("experiment", help="experiment name (under ROOT/experiments) or a path to it")
    parser.add_argument("--metric", "-m", action="append", required=True, dest="metrics", metavar="NAME",
                        help="metric to draw; repeat for several")
    parser.add_argument("--run", action="append", dest="runs", metavar="RUN",
                        help="only this run (and its nested runs); repeatable")
    parser.add_argument("--group-by", metavar="KEY", help="one line per value of config KEY, with a min-max band")
    parser.add_argument("--log-y", action="store_true", help="logarithmic y axes")
    parser.add_argument("--output", "-o", type=Path, default=None,
                        help="image to write; its extension picks the format (default EXPERIMENT_METRICS.png)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Draw the plot, print the path written on stdout, return 0.

    Raises:
        NotFound: no such experiment, or no run logged those metrics.
        InputError: the path is not an experiment.
    """
    from expq._fs import slug
    from expq.errors import InputError
    from expq.experiment.reading import StoredExperiment, StoredRun, open_path

    stored = open_path(args.experiment, root=getattr(args, "root", None))
    if isinstance(stored, StoredRun):
        runs = [r for r in stored.walk() if not args.runs or r.name in args.runs]
        name = stored.name.replace("/", "_")
    elif isinstance(stored, StoredExperiment):
        runs = stored.all_runs(args.runs)
        name = stored.name
    else:  # pragma: no cover - open_path returns one of the two
        raise InputError(f"{args.experiment} is not an experiment")
    output = args.output or Path(f"{slug(name)}_{slug('_'.join(args.metrics))}.png")
    from expq.experiment.plot import plot_runs

    written = plot_runs(runs, args.metrics, output, title=name, group_by=args.group_by, log_y=args.log_y)
    print(written)
    return 0
