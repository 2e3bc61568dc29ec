"""``expq tensorboard``: a real TensorBoard process on an experiment's export, kept up to date.

TensorBoard runs as a child in its own session (a Ctrl-C reaches ``expq``, which stops it with
TERM, then KILL after a grace period). Its URL is read from its own start-up line, so the port
it really bound (``--port 0``, or the next free one after 6006) is the one reported. While it
runs, the caller re-exports on an interval and TensorBoard reloads the new event files.
"""
from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

from expq.errors import ExpqError

__all__ = ["TensorBoardServer"]

_URL = re.compile(r"\bat (https?://\S+?)/? ")


class TensorBoardServer:
    """One TensorBoard child serving ``logdir``; ``url`` is set once it listens."""

    def __init__(self, logdir: Path, host: str = "127.0.0.1", port: int | None = None,
                 reload_interval: float = 5.0) -> None:
        command = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", host,
                   "--reload_interval", f"{max(1, round(reload_interval))}"]
        if port is not None:
            command += ["--port", str(port)]
        self.command = command
        self.url: str | None = None
        self.output: deque[str] = deque(maxlen=20)  # its last lines, to explain a failed start
        self._found = threading.Event()
        self._process: subprocess.Popen[str] | None = None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process else None

    def start(self, timeout: float = 60.0, echo: Callable[[str], None] | None = None,
              cancel: threading.Event | None = None) -> str | None:
        """Start TensorBoard and return its URL once it listens (None if ``cancel`` was set first,
        TensorBoard then stopped); ``echo`` gets its later lines.

        Raises:
            ExpqError: it exited or did not listen within ``timeout`` (with its last lines).
        """
        self._process = subprocess.Popen(self.command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                         text=True, start_new_session=True)
        reader = threading.Thread(target=self._read, args=(echo,), name="expq-tensorboard-output", daemon=True)
        reader.start()
        deadline = time.monotonic() + timeout
        while not self._found.wait(0.1):
            if cancel is not None and cancel.is_set():
                self.stop()
                return None
            if self._process.poll() is not None or time.monotonic() > deadline:
                reader.join(2)
                self.stop()
                last = " | ".join(line for line in self.output if line)[-400:]
                raise ExpqError(f"TensorBoard did not start: {last or 'no output'}")
        return self.url

    def _read(self, echo: Callable[[str], None] | None) -> None:
        assert self._process is not None and self._process.stderr is not None
        for line in self._process.stderr:
            line = line.rstrip("\n")
            self.output.append(line)
            if self.url is None:
                match = _URL.search(line)
                if match:
                    self.url = match.group(1) + "/"
                    self._found.set()
            elif echo is not None:
                echo(line)

    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def stop(self, grace: float = 10.0) -> None:
        """TERM, then KILL after ``grace`` seconds; returns once the process is reaped."""
        process = self._process
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
