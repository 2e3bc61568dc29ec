"""Functions the executor tests run as jobs. The job process imports this module by name, found
through the submitter's sys.path that travels with each call (pytest put this folder on it)."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path


class CustomError(Exception):
    """An exception with a field of its own, to see it come back whole."""

    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code

    def __reduce__(self):
        return type(self), (self.args[0], self.code)


def make_array(n: int, scale: float = 1.0):
    import numpy as np

    print(f"making {n} values")
    return np.arange(n, dtype=np.float32) * scale


def fail_deep(code: int) -> None:
    _inner_failure(code)


def _inner_failure(code: int) -> None:
    raise CustomError(f"went wrong with code {code}", code)


def return_a_lock() -> threading.Lock:
    return threading.Lock()


def mark_once(folder: str, item: int) -> int:
    """Create a marker per item exclusively: a second run of the same item fails."""
    fd = os.open(os.path.join(folder, f"{item}-{os.getenv('EXPQ_JOB_ID')}"), os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    os.close(fd)
    return item * item


def train(lr: float, seed: int) -> dict:
    """Reads its config through the experiment API, as a training script would."""
    import expq

    exp = expq.get_experiment()

    @exp.capture
    def score(lr, seed, extra="none"):
        return {"lr": lr, "seed": seed, "score": lr * 10 + seed, "extra": extra}

    exp.log_scalar("loss", lr)
    return {**score(), "config": exp.config, "args": [lr, seed], "cwd": os.getcwd()}


def sleep_with_grandchild(pid_file: str) -> None:
    """Start a grandchild in its own session (escaping the process group), then sleep."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
    Path(pid_file + ".tmp").write_text(str(child.pid))
    os.replace(pid_file + ".tmp", pid_file)
    time.sleep(300)


def fail_first_attempt() -> str:
    attempt = int(os.environ["EXPQ_ATTEMPT"])
    if attempt == 1:
        raise RuntimeError("first attempt fails on purpose")
    return f"succeeded on attempt {attempt}"


def add(a: int, b: int) -> int:
    return a + b


def where_am_i(item: int) -> dict:
    """What a SLURM array worker's job sees: its array task and its GPU."""
    keys = ("SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "CUDA_VISIBLE_DEVICES", "SLURM_JOB_GPUS")
    return {"item": item, "square": item * item, **{key: os.environ.get(key, "") for key in keys}}


def log_then_fail() -> None:
    import expq

    expq.get_experiment().log_scalar("loss", 1.0)
    raise ValueError("diverged")


def wait_for_file(path: str, started: str) -> str:
    """Say it started, then wait (bounded) until ``path`` exists."""
    Path(started).touch()
    deadline = time.monotonic() + 60
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.05)
    return "released"


def exit_without_returning() -> None:
    os._exit(0)
