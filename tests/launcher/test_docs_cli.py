"""The shell examples of docs/cli.md run, in order, against a fresh root; the outputs it shows are real."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "cli.md"


def run_blocks(tmp_path: Path) -> subprocess.CompletedProcess[str]:
    blocks = re.findall(r"```sh\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 4
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "EXPQ_ROOT": str(tmp_path / "expq-root"), "COLUMNS": "80",
           "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("EXPQ_DEBUG", None)
    return subprocess.run(["bash", "-euo", "pipefail", "-c", "\n".join(blocks)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)


def test_the_cli_manual_examples_run_and_show_real_output(tmp_path: Path) -> None:
    done = run_blocks(tmp_path)
    assert done.returncode == 0, done.stderr
    shown = re.findall(r"```text\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    errors = shown[0].splitlines()
    assert errors == [line for line in done.stderr.splitlines() if "is not" in line or "invalid --sweep" in line]
    table = shown[1]
    assert table in done.stdout  # the status example, at 80 columns
    logs = shown[3].splitlines()
    assert logs[0] in done.stderr.splitlines() and logs[1] in done.stdout.splitlines()
