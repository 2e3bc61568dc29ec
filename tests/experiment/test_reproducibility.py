"""Point 5: source snapshots, fd-level output capture, and the per-run logger."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest
from experiment_scripts import only_run, run_script

import expq
from expq.experiment.sources import snapshot_sources


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    files = {
        "main.py": "x = 1\n",
        "pkg/mod.py": "y = 2\n",
        "conf/train.yaml": "lr: 0.1\n",
        "notes.bin": "binary",
        "big.py": "#" * (2 << 20),
        ".venv/pyvenv.cfg": "home = /usr\n",
        ".venv/lib/python3.11/site-packages/dep.py": "",
        "myenv/pyvenv.cfg": "home = /usr\n",
        "myenv/lib/thing.py": "",
        "lib/site-packages/other.py": "",
        ".git/hooks/pre-commit.py": "",
        "__pycache__/main.cpython-311.py": "",
        "node_modules/a/index.py": "",
        "results/root/experiments/old/run/sources/main.py": "",
    }
    for rel, text in files.items():
        path = project / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return project


def test_snapshot_defaults_skip_envs_git_root_and_large_files(tmp_path: Path) -> None:
    project = _project(tmp_path)
    copied = snapshot_sources(project, tmp_path / "out", skip=(project / "results" / "root",))
    assert sorted(copied) == ["conf/train.yaml", "main.py", "pkg/mod.py"]
    assert (tmp_path / "out" / "pkg" / "mod.py").read_text() == "y = 2\n"


def test_snapshot_include_and_exclude_regexes(tmp_path: Path) -> None:
    project = _project(tmp_path)
    copied = snapshot_sources(project, tmp_path / "out", include=r"\.py$", exclude=r"^pkg/",
                              skip=(project / "results",), max_bytes=10 << 20)
    # a custom exclude replaces the default one; the always-skipped folders stay skipped
    assert sorted(copied) == ["big.py", "main.py", "node_modules/a/index.py"]


def test_experiment_snapshots_its_project_but_not_its_root(tmp_path: Path) -> None:
    project = _project(tmp_path)
    code = """
        import expq
        expq.Experiment("snap", root="results/root", capture_output=False).close()
    """
    run_script(project, code, name="train.py")
    run = only_run(project / "results" / "root", "snap")
    copied = sorted(p.relative_to(run / "sources").as_posix() for p in (run / "sources").rglob("*") if p.is_file())
    assert copied == ["conf/train.yaml", "main.py", "pkg/mod.py", "train.py"]


CAPTURE = r'''
import ctypes, os, subprocess, sys
import expq
exp = expq.Experiment("cap", root="root", sources=False)
print("python stdout")
print("python stderr", file=sys.stderr)
os.write(1, b"fd write\n")
libc = ctypes.CDLL(None)
libc.printf(b"C printf\n")
subprocess.run([sys.executable, "-c", "import os; os.write(1, b'child out\\n'); os.write(2, b'child err\\n')"])

def inner():
    print("inside the run")
    libc.printf(b"C inside the run\n")
    subprocess.run(["echo", "child inside the run"])

exp.run(inner)
print("after the run")
sys.stdout.write("last words without newline")
'''


def test_output_is_captured_at_fd_level_and_still_shown(tmp_path: Path) -> None:
    done = run_script(tmp_path, CAPTURE)
    run = only_run(tmp_path / "root", "cap")
    out = (run / "stdout.log").read_text()
    err = (run / "stderr.log").read_text()
    expected_out = ["python stdout", "fd write", "C printf", "child out", "inside the run", "C inside the run",
                    "child inside the run", "after the run", "last words without newline"]
    for line in expected_out:
        assert line in out, line
        assert line in done.stdout, line  # still reaches the terminal
    for line in ("python stderr", "child err"):
        assert line in err and line in done.stderr
    inner = (run / "runs" / "inner" / "stdout.log").read_text()
    assert inner.split() == "inside the run C inside the run child inside the run".split()
    assert out.index("child out") < out.index("inside the run") < out.index("after the run")


def test_no_capture_when_disabled(tmp_path: Path) -> None:
    run_script(tmp_path, 'import expq\nexpq.Experiment("n", root="root", capture_output=False, sources=False)\n'
               'print("hi")\n')
    assert not (only_run(tmp_path / "root", "n") / "stdout.log").exists()


def test_logger_per_run_with_start_and_end_marks(tmp_path: Path) -> None:
    exp = expq.Experiment("log", root=tmp_path / "root", capture_output=False, sources=False)
    exp.info("top level %d", 1)

    def child() -> None:
        exp.warning("in child")
        exp.logger.error("via logger")

    exp.run(child)
    exp.close()
    top = (exp.path / "run.log").read_text()
    nested = (exp.path / "runs" / "child" / "run.log").read_text()
    assert "top level 1" in top
    assert "===== start experiment log" in top and "===== end experiment log: done" in top
    assert "===== start command child" in nested and "===== end command child: done" in nested
    assert "WARNING" in nested and "in child" in nested and "via logger" in nested
    assert "top level" not in nested
    assert "in child" in top  # nested runs' messages also reach the enclosing run's log


@pytest.mark.skipif(sys.platform != "linux", reason="fd semantics checked on Linux")
def test_capture_survives_a_run_failure(tmp_path: Path) -> None:
    code = """
        import expq
        exp = expq.Experiment("f", root="root", sources=False)
        def bad():
            print("before failing")
            raise KeyError("nope")
        try:
            exp.run(bad)
        except KeyError:
            print("caught")
    """
    done = run_script(tmp_path, code)
    run = only_run(tmp_path / "root", "f")
    assert "before failing" in (run / "runs" / "bad" / "stdout.log").read_text()
    assert "caught" in (run / "stdout.log").read_text() and "caught" in done.stdout
    assert "caught" not in (run / "runs" / "bad" / "stdout.log").read_text()
