"""The Python examples of docs/api.md run, in order, against a fresh root."""
from __future__ import annotations

import re
from pathlib import Path

from experiment_scripts import only_run, run_script

DOC = Path(__file__).resolve().parents[2] / "docs" / "api.md"


def test_the_api_manual_examples_run(tmp_path: Path) -> None:
    blocks = re.findall(r"```python\n(.*?)```", DOC.read_text(encoding="utf-8"), re.S)
    assert len(blocks) >= 2
    done = run_script(tmp_path, "\n".join(["import expq", *blocks]), name="example.py", timeout=120)
    assert "INFO [mnist/train_lr=0.1] done" in done.stderr
    run = only_run(tmp_path / "expq-root", "mnist")
    assert (run / "runs" / "train_lr=0.01" / "files" / "weights.npy").is_file()
    assert (run / "files" / "plots" / "loss_acc.png").is_file()
