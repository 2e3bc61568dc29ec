"""Issue 10 item 4: nested fd-level captures unwind correctly whatever order they are closed in.

Each scenario runs in a fresh interpreter whose stdout and stderr are pipes (as a terminal
would be), so what "reaches the terminal" is what the test reads from the child.
"""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from experiment_scripts import run_script

SCRIPT = """
import json, os, sys
import expq

names = {names!r}
opened = {{name: expq.Experiment(name, sources=False) for name in names}}
print("all-open", flush=True)
os.write(1, b"raw-all-open\\n")
for step, name in enumerate({close_order!r}):
    opened[name].close()
    print(f"after-closing-{{name}}", flush=True)
    os.write(2, f"err-after-{{name}}\\n".encode())
print("at-the-end", flush=True)
json.dump({{name: str(exp.path) for name, exp in opened.items()}}, open("paths.json", "w"))
"""


@pytest.mark.parametrize("close_order", [("a", "b"), ("b", "a"), ("b", "a", "c"), ("a", "c", "b"), ("c", "b", "a")])
def test_any_closing_order_keeps_each_log_and_the_terminal_right(tmp_path: Path, close_order: tuple[str, ...]) -> None:
    names = sorted(close_order)
    done = run_script(tmp_path, SCRIPT.format(names=names, close_order=close_order))
    paths = {name: Path(path) for name, path in json.loads((tmp_path / "paths.json").read_text()).items()}
    # the terminal saw everything, once, in order
    lines = done.stdout.split()
    assert lines == ["all-open", "raw-all-open", *[f"after-closing-{n}" for n in close_order], "at-the-end"]
    assert done.stderr.split() == [f"err-after-{n}" for n in close_order]  # no warning about a child
    for position, name in enumerate(close_order):
        log = (paths[name] / "stdout.log").read_text().split()
        # each log holds what was printed while it was open: nothing before, nothing after
        assert log == ["all-open", "raw-all-open", *[f"after-closing-{n}" for n in close_order[:position]]]
        errors = (paths[name] / "stderr.log").read_text().split()
        assert errors == [f"err-after-{n}" for n in close_order[:position]]
