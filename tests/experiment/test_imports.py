"""``import expq`` stays light: no numpy or matplotlib until a saver or plot needs them."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def _modules_after(code: str, root: Path | None = None) -> set[str]:
    """The modules loaded after ``code`` runs in a fresh interpreter; ``ROOT`` in it names ``root``."""
    code = code.replace("ROOT", repr(str(root)))
    done = subprocess.run([sys.executable, "-c", code + "\nimport sys; print(' '.join(sys.modules))"],
                          capture_output=True, text=True, check=True, timeout=60)
    return set(done.stdout.split())


@pytest.mark.parametrize("code", [
    "import expq",
    "import expq; expq.Experiment; expq.get_experiment; expq.open",
    "import expq.experiment",
    "import expq\n"
    "e = expq.Experiment('x', root=ROOT, sources=False, capture_output=False)\n"
    "e.log_scalar('a', 1.0); e.save({'a': 1}, 'd'); e.save('t', 't'); e.flush(); e.close()",
])
def test_no_numpy_or_matplotlib(code: str, tmp_path: Path) -> None:
    loaded = _modules_after(code, tmp_path)
    assert not {m for m in loaded if m.split(".")[0] in ("numpy", "matplotlib")}


def test_experiment_imports_no_queue_worker_or_launcher() -> None:
    loaded = _modules_after("import expq.experiment, expq.experiment.reading, expq.experiment.table")
    assert not {m for m in loaded if m.startswith(("expq.queue", "expq.worker", "expq.launcher"))}


def test_numpy_is_imported_when_an_array_is_saved(tmp_path: Path) -> None:
    loaded = _modules_after(
        "import expq, numpy\n"
        "e = expq.Experiment('x', root=ROOT, sources=False, capture_output=False)\n"
        "e.save(numpy.zeros(2), 'z'); e.close()", tmp_path
    )
    assert list((tmp_path / "experiments" / "x").iterdir())  # the run went where the test keeps it
    assert "numpy" in loaded and "matplotlib" not in loaded


def test_public_api_names() -> None:
    import expq

    for name in ("Experiment", "get_experiment", "open", "createExperiment", "getExperiment"):
        assert callable(getattr(expq, name))
    with pytest.raises(AttributeError):
        expq.no_such_thing  # noqa: B018


def test_public_surface_hides_implementation_names() -> None:
    import expq

    listed = dir(expq)
    assert not {"Any", "TYPE_CHECKING", "annotations", "importlib"} & set(listed)
    assert {"Experiment", "get_experiment", "open", "StoredRun", "__version__"} <= set(listed)


def test_star_import_does_not_shadow_the_builtin_open() -> None:
    namespace: dict[str, object] = {}
    exec("from expq import *", namespace)  # noqa: S102 -- the very thing under test
    assert "open" not in namespace
    assert "Experiment" in namespace
