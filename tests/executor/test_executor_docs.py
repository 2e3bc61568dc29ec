"""Every ```python example of docs/executor.md runs against a fresh root with a real worker and
prints what its comments say (``print(x)  # expected``)."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).parents[2] / "docs" / "executor.md"
BLOCKS = re.findall(r"^```python\n(.*?)^```", DOC.read_text(), flags=re.S | re.M)


def _expected_output(code: str) -> list[str]:
    return [line.split("#", 1)[1].strip() for line in code.splitlines() if line.startswith("print(") and "#" in line]


def test_the_manual_has_runnable_examples():
    assert BLOCKS and all(_expected_output(code) for code in BLOCKS)


@pytest.mark.parametrize("code", BLOCKS, ids=[f"example-{n + 1}" for n in range(len(BLOCKS))])
def test_example_runs_and_prints_what_it_says(code, workers, tmp_path, wait_until):
    script = tmp_path / "example.py"
    script.write_text(code)
    env = {key: value for key, value in os.environ.items() if not key.startswith("EXPQ_")}
    proc = subprocess.Popen([sys.executable, str(script)], cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        default_root = tmp_path / "expq-root"  # what the example uses: no root given, no $EXPQ_ROOT
        wait_until(lambda: (default_root / "queue" / "pending").is_dir() or proc.poll() is not None, timeout=30)
        workers.root = default_root  # a worker needs a queue to serve, so it starts after the first submit
        workers.start(slots=2)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert out.splitlines() == _expected_output(code)
