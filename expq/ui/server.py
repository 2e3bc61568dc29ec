"""Starting the dashboard: a token, a bound socket, uvicorn serving the app until Ctrl-C.

The socket is bound here, before uvicorn starts, so a port in use is one clear error (exit 1)
instead of a log line from inside the server, and ``--port 0`` picks a free port whose URL can be
printed before serving begins.
"""
from __future__ import annotations

import errno
import ipaddress
import logging
import secrets
import socket
from dataclasses import dataclass
from pathlib import Path

from expq.errors import ExpqError

__all__ = ["Dashboard", "bind", "is_loopback", "new_token", "PortInUse"]

log = logging.getLogger(__name__)


class PortInUse(ExpqError):
    """The address asked for is taken (exit code 1: not bad input, a busy machine)."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(f"cannot listen on {host}:{port}: the port is in use (pick another with --port, or --port 0)")
        self.host, self.port = host, port


def new_token() -> str:
    """A secret for the URL, as Jupyter does: whoever opens the printed URL may act on the queue."""
    return secrets.token_urlsafe(24)


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: any free one).

    Raises:
        PortInUse: the port is taken.
        ExpqError: the host cannot be bound (unknown name, not an address of this machine).
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ExpqError(f"cannot listen on {host}: {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(host, port) from None
        raise ExpqError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


@dataclass
class Dashboard:
    """One dashboard of one root, bound but not yet serving."""

    root: Path
    sock: socket.socket
    token: str
    read_only: bool = False

    @property
    def port(self) -> int:
        return int(self.sock.getsockname()[1])

    def url(self, host: str) -> str:
        shown = f"[{host}]" if ":" in host else host
        if self.read_only:
            return f"http://{shown}:{self.port}/"
        return f"http://{shown}:{self.port}/?token={self.token}"

    def serve(self) -> None:
        """Serve until SIGINT or SIGTERM (uvicorn's handlers end the loop gracefully)."""
        import uvicorn

        from expq.ui.app import create_app

        host = str(self.sock.getsockname()[0])
        hosts = ["127.0.0.1", "localhost", host] if is_loopback(host) else None
        app = create_app(self.root, self.token, read_only=self.read_only, hosts=hosts)
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                timeout_graceful_shutdown=2)
        uvicorn.Server(config).run(sockets=[self.sock])
