"""The README's main job, examples/demo.sh, runs end to end: a sweep through the queue."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_demo_runs_the_sweep_to_a_status_table(tmp_path):
    env = {**os.environ, "EXPQ_ROOT": str(tmp_path / "root"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run(["bash", str(REPO / "examples" / "demo.sh")], env=env, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "pending 0  running 0  done 4  failed 0" in out.stdout
    table = out.stdout.split("== final metric of each run")[1].split("== to compare")[0].strip().splitlines()
    assert table[0] == "same in every run: steps=300"  # constant config keys are said once, above
    assert table[1].split()[:2] == ["run", "state"] and "val_loss.last" in table[1]
    assert len(table) == 6 and all(" done " in row for row in table[2:])
    assert "expq ui --root" in out.stdout
