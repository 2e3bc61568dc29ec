"""Point 3: metric steps, time, validation, NaN/inf, append-only files, flushing and reading back."""
from __future__ import annotations

import math
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from experiment_scripts import only_run, run_script

import expq
from expq.errors import InputError


def _exp(tmp_path: Path, **kwargs: object) -> expq.Experiment:
    return expq.Experiment("m", root=tmp_path / "root", capture_output=False, sources=False, **kwargs)


def test_auto_steps_are_zero_based_and_continue_after_explicit(tmp_path: Path) -> None:
    exp = _exp(tmp_path)
    for value in (1.0, 2.0):
        exp.log_scalar("loss", value)
    exp.log_scalar("loss", 3.0, step=10)
    exp.log_scalar("loss", 4.0)
    exp.log_scalar("loss", 5.0, step=np.int64(3))
    exp.log_scalar("loss", 6.0)
    points = exp.load_scalar("loss")
    assert points.dtype.names == ("step", "value", "time")
    assert points["step"].tolist() == [0, 1, 10, 11, 3, 4]
    assert points["value"].tolist() == [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]


def test_log_scalars_and_wall_clock_time(tmp_path: Path) -> None:
    exp = _exp(tmp_path)
    before = time.time()
    exp.log_scalars({"a": 1, "b": 2.5})
    exp.log_scalars({"a": 2, "b": 3.5})
    exp.log_scalars({"a": 9}, step=7)
    after = time.time()
    a, b = exp.load_scalar("a"), exp.load_scalar("b")
    assert a["step"].tolist() == [0, 1, 7] and b["step"].tolist() == [0, 1]
    assert b["value"].tolist() == [2.5, 3.5]
    assert ((a["time"] >= before - 0.001) & (a["time"] <= after + 0.001)).all()


@pytest.mark.parametrize("value", ["0.5", None, [1.0], 1 + 2j, object()])
def test_non_numeric_values_are_a_clear_error(tmp_path: Path, value: object) -> None:
    exp = _exp(tmp_path)
    with pytest.raises(InputError, match=r"metric 'loss': value .* is not a real number"):
        exp.log_scalar("loss", value)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="step"):
        exp.log_scalar("loss", 1.0, step=1.5)  # type: ignore[arg-type]


def test_numeric_kinds_nan_and_inf_are_kept(tmp_path: Path) -> None:
    exp = _exp(tmp_path)
    for value in (float("nan"), float("inf"), -math.inf, np.float32(0.25), np.array(2.0), True, 10**3, 0.1):
        exp.log_scalar("v", value)
    values = exp.load_scalar("v")["value"]
    assert math.isnan(values[0]) and values[1] == math.inf and values[2] == -math.inf
    assert values[3:].tolist() == [0.25, 2.0, 1.0, 1000.0, 0.1]


def test_metric_files_are_appended_never_rewritten(tmp_path: Path) -> None:
    exp = _exp(tmp_path)
    exp.log_scalar("loss", 1.0)
    exp.flush()
    path = exp.path / "metrics" / "loss.csv"
    first = path.read_text()
    inode = path.stat().st_ino
    exp.log_scalar("loss", 2.0)
    exp.flush()
    assert path.read_text().startswith(first) and path.stat().st_ino == inode
    assert first.splitlines()[0] == "step,value,time"


def test_metrics_are_flushed_on_a_short_interval(tmp_path: Path, wait_until: Callable[..., object]) -> None:
    exp = _exp(tmp_path, flush_interval=0.05)
    exp.log_scalar("live", 1.0)
    path = exp.path / "metrics" / "live.csv"
    wait_until(lambda: path.exists() and path.read_text().count("\n") == 2, timeout=10,
               message="metrics were not flushed by the background thread")


def test_slash_in_metric_name_and_listing(tmp_path: Path) -> None:
    exp = _exp(tmp_path)
    exp.log_scalar("train/loss", 1.0)
    exp.log_scalar("val/loss", 2.0)
    exp.close()
    assert expq.open(exp.path).metrics == ["train/loss", "val/loss"]
    with pytest.raises(InputError):
        _exp(tmp_path).log_scalar("../x", 1.0)


@pytest.mark.parametrize("ending", ["", "raise RuntimeError('late failure')", "import sys; sys.exit(3)"])
def test_nothing_lost_at_exit(tmp_path: Path, ending: str) -> None:
    code = f"""
        import expq
        exp = expq.Experiment("exit", root="root", capture_output=False, sources=False, flush_interval=3600)
        for i in range(10_000):
            exp.log_scalar("loss", i * 0.5)
        {ending}
    """
    run_script(tmp_path, code, check=False)
    points = expq.open(only_run(tmp_path / "root", "exit")).load_scalar("loss")
    assert points["step"].tolist() == list(range(10_000))


def test_steps_continue_when_a_series_is_reopened(tmp_path: Path) -> None:
    exp = _exp(tmp_path)
    exp.log_scalar("x", 1.0)
    exp.log_scalar("x", 1.0)
    exp.flush()
    from expq.experiment.metrics import MetricsSink

    other = MetricsSink(exp.path / "metrics")
    other.log_scalar("x", 5.0)
    other.close()
    assert exp.load_scalar("x")["step"].tolist() == [0, 1, 2]


def test_a_series_reopened_after_a_torn_write_starts_a_line_of_its_own(tmp_path: Path) -> None:
    # a retried job appends to its first attempt's metrics, whose last write a crash may have cut
    exp = _exp(tmp_path)
    for step in range(3):
        exp.log_scalar("x", 1.0, step=step)
    exp.flush()
    path = exp.path / "metrics" / "x.csv"
    with open(path, "ab") as torn:
        torn.write(b"3,0.5")  # no time, no newline: the rest never reached the disk
    from expq.experiment.metrics import MetricsSink

    retry = MetricsSink(exp.path / "metrics")
    retry.log_scalar("x", 2.0, step=10)
    retry.close()
    assert exp.load_scalar("x")["step"].tolist() == [0, 1, 2, 10]


def test_damaged_lines_are_skipped_and_the_sound_ones_read(tmp_path: Path) -> None:
    exp = _exp(tmp_path)
    exp.log_scalar("x", 1.0, step=0)
    exp.flush()
    with open(exp.path / "metrics" / "x.csv", "ab") as damaged:
        damaged.write(b"1,0.5\n2,oops,3\n\xff\xfe,1,2\n\0\0\0\0\nstep,value,time\n5,2.5,1.0\n")
    points = exp.load_scalar("x")
    assert points["step"].tolist() == [0, 5] and points["value"].tolist() == [1.0, 2.5]


def test_a_fifo_in_a_metrics_place_neither_blocks_nor_breaks_the_others(tmp_path: Path) -> None:
    import errno
    import os
    import threading

    exp = _exp(tmp_path)
    exp.log_scalar("good", 1.0, step=0)
    exp.flush()
    os.mkfifo(exp.path / "metrics" / "odd.csv")  # a job may leave anything in its run directory
    done: list[object] = []

    def use() -> None:
        exp.log_scalar("odd", 2.0)
        try:
            exp.flush()
        except OSError as exc:  # the write fails at once (ENXIO): nothing waits for a reader
            done.append(exc.errno)
        done.append((exp.load_scalar("odd").tolist(), expq.open(exp.path).load_scalar("good").tolist()))

    worker = threading.Thread(target=use, daemon=True)
    worker.start()
    worker.join(timeout=30)
    assert len(done) == 2, "a FIFO blocked"
    assert done[0] == errno.ENXIO and done[1][0] == [] and [p[:2] for p in done[1][1]] == [(0, 1.0)]


def test_two_processes_appending_to_one_metric_keep_whole_lines(tmp_path: Path) -> None:
    code = """
        import sys
        from pathlib import Path
        from expq.experiment.metrics import MetricsSink
        sink = MetricsSink(Path(sys.argv[0]).parent / "shared")
        for i in range(20_000):
            sink.log_scalar("m", 0.123456789, step=i)
            if i % 1000 == 0:
                sink.flush()
        sink.close()
    """
    import subprocess
    import sys

    (tmp_path / "w.py").write_text(__import__("textwrap").dedent(code))
    procs = [subprocess.Popen([sys.executable, str(tmp_path / "w.py")]) for _ in range(3)]
    assert all(p.wait(60) == 0 for p in procs)
    lines = (tmp_path / "shared" / "m.csv").read_text().splitlines()
    assert lines[0] == "step,value,time" and len(lines) == 60_001
    assert all(line.count(",") == 2 and line.split(",")[1] == "0.123456789" for line in lines[1:])
