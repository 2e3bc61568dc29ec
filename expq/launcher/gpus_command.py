"""Placeholder: the command this module adds is being written (see the open issues)."""
from __future__ import annotations

import argparse


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds nothing yet."""


def run(args: argparse.Namespace) -> int:
    return 0
