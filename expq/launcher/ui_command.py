"""``expq ui``: serve the web dashboard of one root and print its URL (the token inside it)."""
from __future__ import annotations

import argparse
import sys
from typing import Any

from expq.launcher.argtypes import port

__all__ = ["register", "run"]


def register(subparsers: Any) -> None:
    """Add the ``ui`` sub-command (``--root`` is added and resolved by the caller)."""
    parser = subparsers.add_parser(
        "ui",
        help="local web dashboard: queue, runs table, charts, logs",
        description="Serve a live dashboard of ROOT: the queue, every experiment's runs table and charts, each "
                    "run's config, logs and files. Prints the URL on stdout; Ctrl-C stops it. Cancel and retry "
                    "need the token inside the printed URL.",
    )
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this machine only)")
    parser.add_argument("--port", type=port, default=8765, help="port (default 8765; 0 picks a free one)")
    parser.add_argument("--read-only", action="store_true", help="offer no actions (no cancel, no retry)")
    parser.add_argument("--open", action="store_true", help="open the dashboard in a web browser")


def run(args: argparse.Namespace) -> int:
    """Bind, print the URL, serve until Ctrl-C; 0.

    Raises:
        NotFound: the root does not exist.
        PortInUse: the port is taken (exit 1).
        ExpqError: the ui extra is not installed (exit 1).
    """
    from expq.errors import ExpqError, NotFound

    if not args.root.is_dir():
        raise NotFound("expq root", f"{args.root} (pass --root or set EXPQ_ROOT)")
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise ExpqError("the dashboard needs the ui extra: pip install 'expq[ui]'") from None
    from expq.ui.server import Dashboard, bind, is_loopback, new_token

    dashboard = Dashboard(args.root, bind(args.host, args.port), new_token(), read_only=args.read_only)
    if not is_loopback(args.host):
        sys.stderr.write(f"expq: warning: listening on {args.host}: anyone who can reach this machine can read "
                         "this dashboard (actions still need the token)\n")
    shown = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
    sys.stdout.write(dashboard.url(shown) + "\n")
    sys.stdout.flush()
    if args.open:
        import webbrowser

        webbrowser.open(dashboard.url(shown))
    try:
        dashboard.serve()
    except KeyboardInterrupt:  # uvicorn stops gracefully on Ctrl-C, then re-raises it: the normal way out
        pass
    return 0
