"""``expq runs EXPERIMENT``: the runs table in the terminal, the same one the dashboard shows.

Natural run order, one column per config key that varies (the constant ones on one line above),
last and best of each metric; ``--group-by KEY`` gives one row per value of KEY with the mean, min
and max of each metric's last value across that group's runs (seeds, typically).
"""
from __future__ import annotations

import argparse
import sys
from typing import Any

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    """Add the ``runs`` sub-command (``--root`` is added and resolved by the caller)."""
    parser = subparsers.add_parser(
        "runs",
        help="the runs table of an experiment (config that varies, last/best of each metric)",
        description="One row per run of EXPERIMENT in natural order: the config keys that vary across runs, "
                    "last and best of each metric, state, duration, returned value. Config keys shared by "
                    "every run are printed once above the table.",
    )
    parser.add_argument("experiment", help="experiment name (under ROOT/experiments) or a path to it")
    parser.add_argument("--group-by", metavar="KEY",
                        help="one row per value of config KEY: mean, min and max of each metric across its runs")
    parser.add_argument("--sort", metavar="COLUMN", help="sort by this column, e.g. loss.last or lr (--sort=-COLUMN or --desc: descending)")
    parser.add_argument("--desc", action="store_true", help="sort in descending order")
    parser.add_argument("--filter", action="append", default=[], metavar="KEY=VALUE", dest="filters",
                        help="only runs whose config KEY (or column) equals VALUE; repeatable, all must hold")
    parser.add_argument("--maximize", action="append", default=[], metavar="METRIC",
                        help="best of METRIC is its maximum (default: minimum); repeatable")
    parser.add_argument("--csv", action="store_true", help="every column as CSV, nothing cut")


def run(args: argparse.Namespace) -> int:
    """Print the table; 0.

    Raises:
        NotFound: no such experiment.
        InputError: a bad filter, sort column or group key, or a path that is no experiment.
    """
    from expq.experiment.table import group_rows, parse_filter, runs_table
    from expq.launcher.terminal import terminal_width

    filters = dict(parse_filter(text) for text in args.filters)  # bad input fails before any reading
    table = runs_table(_runs_of(args), args.maximize)
    if filters:
        table = table.where(filters)
    if args.group_by:
        table = group_rows(table, args.group_by)
    if args.sort:
        column = args.sort.lstrip("-")
        if column not in table.columns and f"config.{column}" in table.columns:
            column = f"config.{column}"
        table = table.sorted_by(column, descending=args.desc or args.sort.startswith("-"))
    text = table.to_csv() if args.csv else table.render(terminal_width()) + "\n"
    sys.stdout.write(text)
    return 0


def _runs_of(args: argparse.Namespace) -> list[Any]:
    from expq.errors import InputError
    from expq.experiment.reading import StoredExperiment, StoredRun, open_path

    stored = open_path(args.experiment, root=getattr(args, "root", None))
    if isinstance(stored, StoredRun):
        return stored.walk()
    if isinstance(stored, StoredExperiment):
        return stored.all_runs()
    raise InputError(f"{args.experiment} is not an experiment")  # pragma: no cover - open_path returns one of the two
