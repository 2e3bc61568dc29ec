"""What the dashboard tests share besides fixtures: the root filled by real workers, the ``expq ui``
child process, where the browser lives, and image checks. A module with its own name, since
``conftest`` is not importable by name when pytest collects several test folders."""
from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("EXPQ_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("EXPQ_CHROMEDRIVER", "/usr/bin/chromedriver")
FAST = ["--poll", "0.05", "--heartbeat", "0.2", "--grace", "2"]
SWEEP = ["--experiment", "demo", "--sweep", "lr=0.02,0.1", "--sweep", "seed=0,1,2", "--set", "steps=60"]


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def expq(root: Path, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``python -m expq --root ROOT ARGS`` in a child process."""
    return subprocess.run([sys.executable, "-m", "expq", "--root", str(root), *args], capture_output=True,
                          text=True, check=check, timeout=timeout, cwd=REPO)


@dataclass
class Filled:
    """The root, its job ids and the worker kept running for the live job."""

    root: Path
    sweep: list[int]
    failing: int
    live: int
    worker: subprocess.Popen[bytes] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def run_dir(self, job: int) -> Path:
        from expq.queue.store import JobQueue

        _, spec = JobQueue(self.root).get(job)
        return self.root / spec.run_dir


def _drain(root: Path, logs: Path, env: dict[str, str]) -> None:
    with open(logs / "drain.log", "ab") as log:
        done = subprocess.run([sys.executable, "-m", "expq", "--root", str(root), "worker", "--gpus", "none",
                               "--slots", "2", "--drain", *FAST], stdout=log, stderr=log, env=env, cwd=REPO, timeout=120)
    assert done.returncode == 0, (logs / "drain.log").read_text()


def fill_root(root: Path, logs: Path, wait_until: Callable[..., Any], live: bool = True) -> Filled:
    """Submit the sweep and a failing job, drain them with a real worker; then start the live job."""
    (logs / "gpu-locks").mkdir(exist_ok=True)
    env = {**os.environ, "EXPQ_GPU_LOCK_DIR": str(logs / "gpu-locks")}
    sweep = [int(x) for x in expq(root, "submit", *SWEEP, "--", sys.executable, "examples/train.py").stdout.split()]
    (failing,) = [int(x) for x in expq(root, "submit", "--experiment", "broken", "--name", "exits-3", "--",
                                       sys.executable, "-c", "import sys; print('bad'); sys.exit(3)").stdout.split()]
    _drain(root, logs, env)
    filled = Filled(root, sweep, failing, live=0)
    if live:
        (filled.live,) = [int(x) for x in expq(root, "submit", "--experiment", "live", "--name", "ticker", "--",
                                               sys.executable, str(REPO / "tests" / "ui" / "live_job.py")).stdout.split()]
        log = open(logs / "worker.log", "ab")
        filled.worker = subprocess.Popen([sys.executable, "-m", "expq", "--root", str(root), "worker", "--gpus", "none",
                                          *FAST], stdout=log, stderr=log, env=env, cwd=REPO)
        log.close()
        wait_until(lambda: (filled.run_dir(filled.live) / "pids.txt").exists(), timeout=30,
                   message="the live job did not start")
    return filled


class Server:
    """A running ``expq ui`` child process and the URL it printed."""

    def __init__(self, root: Path, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "expq", "--root", str(root), "ui", "--port", "0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()  # the server prints its URL before serving
        match = re.fullmatch(r"(http://127\.0\.0\.1:\d+)/(\?token=([\w-]+))?", self.url)
        assert match, f"unexpected first line {self.url!r}; stderr: {self.proc.stderr.read() if self.proc.stderr else ''}"
        self.base = match.group(1)
        self.token = match.group(3) or ""

    def stop(self) -> tuple[int, str]:
        self.proc.send_signal(signal.SIGINT)
        _, err = self.proc.communicate(timeout=15)
        return self.proc.returncode, err


def browser_missing() -> str:
    """Why there is no browser to test with ('' when there is one)."""
    given = os.environ.get("EXPQ_BROWSER_UNAVAILABLE_REASON", "")  # set by ci/test.sh when ci/browser.sh failed
    for path in (CHROMIUM, CHROMEDRIVER):
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            return given or f"{path} is missing (run ci/browser.sh as root: apt-get install chromium chromium-driver)"
    return ""


def not_blank(png: Path) -> int:
    """The number of distinct colours in an image (a blank page has one or two)."""
    from PIL import Image

    with Image.open(png) as image:
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20)
    return len(colours) if colours else 1 << 20


def copy_if_asked(src: Path, dest: Path) -> None:
    """Refresh a documentation image when EXPQ_UPDATE_DOCS_IMG=1 (never in a normal test run)."""
    if os.environ.get("EXPQ_UPDATE_DOCS_IMG") == "1":
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)
