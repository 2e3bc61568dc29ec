"""Metric files read incrementally by the dashboard: appended bytes only, torn lines left for later,
replaced or truncated files read afresh, damaged lines skipped. Real files, no server."""
from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from expq.ui.series import MetricStore, last_point

HEADER = "step,value,time\n"


def _lines(start: int, stop: int) -> str:
    return "".join(f"{i},{i / 2},{1000 + i}.5\n" for i in range(start, stop))


def test_points_grow_by_the_appended_bytes_only(tmp_path: Path) -> None:
    path = tmp_path / "loss.csv"
    path.write_text(HEADER + _lines(0, 50))
    store = MetricStore()
    assert len(store.points(path)) == 50
    size = path.stat().st_size
    with open(path, "a") as handle:
        handle.write(_lines(50, 60) + "60,30")  # the last line is being written
    points = store.points(path)
    assert len(points) == 60 and points[-1][0] == 59
    assert store.bytes_read(path) == len(HEADER + _lines(0, 60))  # the torn tail was not consumed
    with open(path, "a") as handle:
        handle.write(".0,1060.5\n")
    assert store.points(path)[-1].tolist() == [60, 30.0, 1060.5]
    assert store.bytes_read(path) == path.stat().st_size > size


def test_a_replaced_or_truncated_file_is_read_afresh(tmp_path: Path) -> None:
    path = tmp_path / "acc.csv"
    path.write_text(HEADER + _lines(0, 20))
    store = MetricStore()
    assert store.summary(path).count == 20
    fresh = tmp_path / "acc.tmp"
    fresh.write_text(HEADER + _lines(100, 105))
    os.replace(fresh, path)  # a new inode
    summary = store.summary(path)
    assert summary.count == 5 and summary.last == 52.0 and summary.low == 50.0
    path.write_text(HEADER + _lines(0, 2))  # same inode, shorter
    assert len(store.points(path)) == 2 and store.summary(path).count == 2


def test_summaries_skip_damaged_lines_and_nan(tmp_path: Path) -> None:
    path = tmp_path / "m.csv"
    path.write_text(HEADER + "0,3.0,1.0\nnot a line\n1,nan,2.0\n2,1.0,3.0\n")
    summary = MetricStore().summary(path)
    assert summary.count == 3 and summary.last == 1.0  # the NaN counts as a point, not for min or max
    assert (summary.low, summary.high, summary.best(False), summary.best(True)) == (1.0, 3.0, 1.0, 3.0)
    assert last_point(path) == (2, 1.0, 3.0)
    assert last_point(tmp_path / "missing.csv") is None


def test_warming_fills_summaries_in_the_background(tmp_path: Path, wait_until: Callable[..., Any]) -> None:
    paths = []
    for index in range(30):
        path = tmp_path / f"{index}.csv"
        path.write_text(HEADER + _lines(0, 10 + index))
        paths.append(path)
    store = MetricStore()
    store.warm(paths)
    wait_until(lambda: all(store.known(p) for p in paths), message="not every summary was read")
    assert [store.summary(p).count for p in paths] == [10 + i for i in range(30)]
