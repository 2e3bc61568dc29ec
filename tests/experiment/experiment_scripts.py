"""Running test scripts in real child processes, for tests/experiment (imported by file name)."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path


def child_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPQ_")}
    env.update(extra or {})
    return env


def run_script(folder: Path, code: str, env: dict[str, str] | None = None, name: str = "script.py",
               check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Write ``code`` to ``folder/name`` and run it in a fresh interpreter with cwd ``folder``."""
    script = folder / name
    script.write_text(textwrap.dedent(code))
    done = subprocess.run([sys.executable, str(script)], cwd=folder, env=child_env(env), capture_output=True,
                          text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(f"script failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return done


def only_run(root: Path, experiment: str) -> Path:
    """The single top-level run directory of ``experiment`` under ``root``."""
    runs = [p for p in (root / "experiments" / experiment).iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]
