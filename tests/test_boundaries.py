"""Module boundaries and start-up cost: each import, in a fresh interpreter, loads only what it may."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = {"numpy", "matplotlib"}
EXTRAS = {"starlette", "uvicorn", "plotly", "tensorboard", "tensorboardX", "mlflow", "cloudpickle", "selenium"}

# module imported -> modules that must not be loaded by it
FORBIDDEN = {
    "expq": HEAVY | EXTRAS | {"psutil", "yaml", "filelock", "expq.queue", "expq.worker", "expq.launcher", "expq.experiment"},
    "expq.launcher.cli": HEAVY | EXTRAS | {"psutil", "filelock", "expq.worker", "expq.experiment"},
    "expq.queue.store": HEAVY | {"psutil", "expq.worker", "expq.launcher", "expq.experiment"},
    "expq.queue.claim": HEAVY | {"expq.worker", "expq.launcher", "expq.experiment"},
    "expq.worker.loop": HEAVY | {"expq.launcher", "expq.experiment"},
    "expq.experiment": HEAVY | {"expq.queue", "expq.worker", "expq.launcher", "expq.export", "expq.ui",
                                "expq.executor"},
    "expq.executor": HEAVY | {"cloudpickle", "expq.worker"},
    "expq.contract": HEAVY | {"yaml", "psutil", "filelock", "expq.queue", "expq.worker", "expq.launcher",
                              "expq.experiment"},
    "expq.config": HEAVY | {"yaml", "psutil", "filelock", "expq.queue", "expq.worker", "expq.launcher",
                            "expq.experiment"},
}


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys, json; {statement}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return set(json.loads(out))


@pytest.mark.parametrize("module", sorted(FORBIDDEN))
def test_import_loads_nothing_forbidden(module):
    loaded = _loaded_after(f"import {module}")
    assert not loaded & FORBIDDEN[module], f"import {module} loaded {sorted(loaded & FORBIDDEN[module])}"


def test_help_loads_neither_numpy_nor_matplotlib():
    code = ("import sys, json, contextlib, io\nfrom expq.launcher.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n        main(['--help'])\n    except SystemExit:\n        pass\n"
            "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert not set(json.loads(out)) & HEAVY


def test_library_never_prints():
    """Only the launcher writes to the terminal: no print() anywhere else in the package."""
    from pathlib import Path  # noqa: PLC0415

    import expq  # noqa: PLC0415

    package = Path(expq.__file__).parent
    offenders = [str(p.relative_to(package)) for p in package.rglob("*.py")
                 if "launcher" not in p.parts and "print(" in p.read_text()]
    assert offenders == []
