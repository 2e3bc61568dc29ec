"""Every shell and Python example of the README runs, in order, as a newcomer would paste them: in a
folder that looks like the checkout (its .venv and examples/), against a fresh root, with a worker
serving the root in the background for the examples that need one. A block preceded by an HTML
comment saying ``not run`` is skipped (the two set-up commands themselves)."""
from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BLOCK = re.compile(r"(<!--[^\n]*-->\n)?```(bash|python)\n(.*?)```", re.S)


def readme_blocks() -> list[tuple[str, str]]:
    text = (REPO / "README.md").read_text()
    return [(lang, code) for note, lang, code in BLOCK.findall(text) if "not run" not in note]


def test_the_readme_has_examples_of_both_kinds():
    kinds = [lang for lang, _ in readme_blocks()]
    assert kinds.count("bash") >= 2 and kinds.count("python") >= 2


def test_every_readme_example_runs_in_order(tmp_path):
    home = tmp_path / "checkout"
    home.mkdir()
    (home / ".venv").symlink_to(Path(sys.executable).parent.parent)  # the venv running these tests
    (home / "examples").symlink_to(REPO / "examples")
    root = tmp_path / "root"
    venv_bin = Path(sys.executable).parent
    env = {**os.environ, "EXPQ_ROOT": str(root), "EXPQ_GPU_LOCK_DIR": str(tmp_path / "locks"),
           "PATH": f"{venv_bin}{os.pathsep}{os.environ['PATH']}"}
    log = open(tmp_path / "worker.log", "wb")
    worker = subprocess.Popen([sys.executable, "-m", "expq", "worker", "--gpus", "none", "--slots", "2",
                               "--poll", "0.1"], env=env, stdout=log, stderr=log)
    try:
        for lang, code in readme_blocks():
            command = ["bash", "-euo", "pipefail", "-c", code] if lang == "bash" else [sys.executable, "-c", code]
            done = subprocess.run(command, cwd=home, env=env, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, f"README {lang} block failed:\n{code}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
        subprocess.run([sys.executable, "-m", "expq", "wait", "--experiment", "quickstart", "--timeout", "5m"],
                       env=env, capture_output=True, check=True)  # what the last blocks queued, run to the end
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
        log.close()
    status = subprocess.run([sys.executable, "-m", "expq", "status", "--json", "--experiment", "quickstart"],
                            env=env, capture_output=True, text=True, check=True)
    jobs = json.loads(status.stdout)["jobs"]
    assert [job["state"] for job in jobs] == ["done"] * 7  # the sweep of 4, two more seeds, the baseline
    assert (home / "quickstart.png").stat().st_size > 0 and (home / "tb").is_dir() and (home / "mlruns").is_dir()
