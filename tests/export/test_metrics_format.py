"""The metrics CSV (expq/experiment/metrics.py) holds each value in the shortest text that reads back
as the same number: ``0.4``, not ``0.40000000000000002`` (issue 10, item 9). The exporters read
these files, so their exactness is pinned here."""
from __future__ import annotations

import math

import numpy as np

import expq

VALUES = [0.4, 0.1 + 0.2, 1e-300, 5e-324, -0.0, 2.5, 10**20, 7, True, math.nan, math.inf, -math.inf,
          np.float32(0.1), np.float64(1 / 3)]
TEXT = ["0.4", "0.30000000000000004", "1e-300", "5e-324", "-0.0", "2.5", "100000000000000000000", "7", "1",
        "nan", "inf", "-inf", repr(float(np.float32(0.1))), "0.3333333333333333"]


def test_values_are_written_in_shortest_round_trip_form_and_read_back_exactly(tmp_path):
    with expq.Experiment("csv", root=tmp_path, sources=False, capture_output=False) as exp:
        for value in VALUES:
            exp.log_scalar("m", value)
    lines = (exp.path / "metrics" / "m.csv").read_text().splitlines()
    assert lines[0] == "step,value,time"
    assert [line.split(",")[1] for line in lines[1:]] == TEXT
    assert [int(line.split(",")[0]) for line in lines[1:]] == list(range(len(VALUES)))
    read = expq.open(exp.path).load_scalar("m")["value"]
    expected = np.array([float(v) for v in VALUES])
    assert np.array_equal(read, expected, equal_nan=True)
    assert math.copysign(1, read[4]) == -1  # -0.0 kept its sign


def test_read_scalar_since_returns_only_complete_lines_appended_since(tmp_path):
    from expq.experiment.metrics import read_scalar_since

    with expq.Experiment("since", root=tmp_path, sources=False, capture_output=False) as exp:
        for value in (0.5, 1.5):
            exp.log_scalar("m", value)
    metrics = exp.path / "metrics"
    points, start, end = read_scalar_since(metrics, "m", 0)
    assert points["value"].tolist() == [0.5, 1.5] and start == 0
    assert end == (metrics / "m.csv").stat().st_size
    with open(metrics / "m.csv", "a") as handle:
        handle.write("2,2.5,1700000000.000\n3,3.")  # the last line is still being written
    points, start, end2 = read_scalar_since(metrics, "m", end)
    assert points.tolist() == [(2, 2.5, 1700000000.0)] and start == end
    with open(metrics / "m.csv", "a") as handle:
        handle.write("5,1700000001.000\n")
    points, _, end3 = read_scalar_since(metrics, "m", end2)
    assert points.tolist() == [(3, 3.5, 1700000001.0)] and end3 == (metrics / "m.csv").stat().st_size
    assert read_scalar_since(metrics, "m", end3)[0].size == 0
    (metrics / "m.csv").write_text("step,value,time\n0,9.0,1.000\n")  # replaced by a shorter file
    points, start, _ = read_scalar_since(metrics, "m", end3)
    assert start == 0 and points.tolist() == [(0, 9.0, 1.0)]
