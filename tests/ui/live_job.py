"""A job that runs until it is stopped: prints a line and logs a metric every 0.1 s, and keeps a
grandchild alive, so cancelling it can be checked to kill the whole process tree."""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import expq

exp = expq.Experiment("live")

if __name__ == "__main__":
    grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    (Path(os.environ["EXPQ_RUN_DIR"]) / "pids.txt").write_text(f"{os.getpid()} {grandchild.pid}\n")
    with exp:
        for tick in range(100_000):
            print(f"tick {tick}", flush=True)
            exp.log_scalar("progress", float(tick))
            time.sleep(0.1)
