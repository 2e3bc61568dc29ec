"""Issue 10 items 9 and 10: run messages reach the console, and run loggers are freed."""
from __future__ import annotations

import gc
import logging
import weakref
from pathlib import Path

import pytest
from experiment_scripts import only_run, run_script

import expq


def test_info_warning_error_reach_stderr_at_their_level(tmp_path: Path) -> None:
    code = """
        import expq
        exp = expq.Experiment("talk", sources=False, capture_output=False)
        exp.debug("quiet-debug")
        exp.info("hello %s", "info")
        exp.warning("careful")
        exp.run(lambda: exp.error("inner-error"))
        exp.close()
    """
    done = run_script(tmp_path, code)
    lines = done.stderr.splitlines()
    assert [line.split(" ", 1)[0] for line in lines] == ["INFO", "WARNING", "ERROR"]
    assert lines[:2] == ["INFO [talk] hello info", "WARNING [talk] careful"]
    assert lines[2] == "ERROR [talk/lambda] inner-error"
    # run.log keeps everything, debug and the run's own start/end marks included
    log = (only_run(tmp_path / "expq-root", "talk") / "run.log").read_text()
    for text in ("quiet-debug", "hello info", "careful", "inner-error", "===== start", "===== end"):
        assert text in log
    assert "=====" not in done.stderr


def test_an_application_that_configured_logging_decides(tmp_path: Path) -> None:
    code = """
        import logging, sys
        logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="APP %(message)s")
        import expq
        exp = expq.Experiment("talk", sources=False, capture_output=False)
        exp.info("not-shown")
        exp.warning("shown-once")
        exp.close()
    """
    done = run_script(tmp_path, code)
    assert done.stderr.splitlines() == ["APP shown-once"]


def test_each_run_logger_is_freed_when_its_run_ends(tmp_path: Path) -> None:
    exp = expq.Experiment("many", root=tmp_path / "root", sources=False, capture_output=False)
    registered = len(logging.Logger.manager.loggerDict)
    loggers: list[weakref.ref[logging.Logger]] = []

    def step() -> None:
        loggers.append(weakref.ref(exp.logger))
        exp.debug("step %d", len(loggers))

    for _ in range(300):
        exp.run(step)
    gc.collect()
    assert len(loggers) == 300
    assert [ref for ref in loggers if ref() is not None] == []
    assert len(logging.Logger.manager.loggerDict) == registered
    exp.close()


@pytest.mark.parametrize("nested", [False, True])
def test_a_closed_run_holds_no_open_file(tmp_path: Path, nested: bool) -> None:
    exp = expq.Experiment("files", root=tmp_path / "root", sources=False, capture_output=False)
    handlers: list[logging.Handler] = []
    if nested:
        exp.run(lambda: handlers.extend(exp.logger.handlers))
    else:
        handlers.extend(exp.logger.handlers)
        exp.close()
    assert handlers and all(getattr(h, "stream", None) is None for h in handlers if isinstance(h, logging.FileHandler))
    exp.close()
