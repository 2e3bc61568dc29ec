"""Metric files read incrementally: a poll reads only the bytes appended since the last one.

Workers append ``step,value,time`` lines to a metric's CSV while the dashboard reads it. Each file
is tracked by its inode and the offset of the last complete line read; a later read starts there,
so a live chart polling a growing metric costs the new bytes, not the file. A torn last line (a
write in progress) is left for the next read. A file that shrank or was replaced is read afresh.

Two levels, so memory stays bounded on a root of thousands of runs: ``Summary`` (last, min, max,
count: a few numbers per file, kept for every file seen) and ``Series`` (every point, kept for the
``MAX_SERIES`` most recently drawn files).
"""
from __future__ import annotations

import io
import math
import os
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

from expq._fs import open_for_reading
from expq.experiment.metrics import sound_points

if TYPE_CHECKING:
    import numpy

__all__ = ["Summary", "Series", "MetricStore", "parse_lines", "parse_values", "last_point"]

MAX_SERIES = 256
MetricFile = Union[str, "os.PathLike[str]"]
_TAIL = 4096


def parse_lines(chunk: bytes) -> numpy.ndarray:
    """Rows of (step, value, time) from complete CSV lines; a header or malformed line is skipped."""
    import numpy as np

    if chunk.startswith(b"step,"):
        chunk = chunk.partition(b"\n")[2]
    if not chunk.strip():
        return np.zeros((0, 3))
    try:
        return np.loadtxt(io.BytesIO(chunk), delimiter=",", ndmin=2, usecols=(0, 1, 2))
    except ValueError:  # a damaged line: keep the ones that parse
        return np.array(sound_points(chunk), dtype=float).reshape(-1, 3)


def parse_values(chunk: bytes) -> numpy.ndarray:
    """The value column only of complete CSV lines: what a summary needs, parsed twice as fast."""
    import numpy as np

    if chunk.startswith(b"step,"):
        chunk = chunk.partition(b"\n")[2]
    if not chunk.strip():
        return np.zeros(0)
    try:
        return np.loadtxt(io.BytesIO(chunk), delimiter=",", ndmin=1, usecols=1)
    except ValueError:  # a damaged line somewhere: the careful parser skips it
        return parse_lines(chunk)[:, 1]


def last_point(path: MetricFile) -> tuple[int, float, float] | None:
    """The last complete point of a metric file, from its last few kB only (None when there is none)."""
    try:
        with open_for_reading(path) as handle:
            size = handle.seek(0, os.SEEK_END)
            handle.seek(max(0, size - _TAIL))
            lines = handle.read().split(b"\n")[:-1]  # the part after the last newline is torn
    except OSError:
        return None
    for line in reversed(lines):
        try:
            step, value, stamp = line.split(b",")
            return int(step), float(value), float(stamp)
        except ValueError:
            continue
    return None


@dataclass
class _Cursor:
    """Where the previous read of one file stopped."""

    inode: int = -1
    offset: int = 0

    def read_new(self, path: MetricFile) -> tuple[bytes, bool]:
        """The complete lines appended since the last call, and whether the file started over."""
        try:
            with open_for_reading(path) as handle:
                stat = os.fstat(handle.fileno())
                restart = stat.st_ino != self.inode or stat.st_size < self.offset
                if restart:
                    self.inode, self.offset = stat.st_ino, 0
                handle.seek(self.offset)
                data = handle.read(max(0, stat.st_size - self.offset))
        except OSError:
            self.inode, self.offset = -1, 0
            return b"", True
        end = data.rfind(b"\n") + 1  # a torn last line waits for the next read
        self.offset += end
        return data[:end], restart


@dataclass
class Summary:
    """Last value, minimum, maximum (NaN ignored) and point count of one metric file."""

    cursor: _Cursor = field(default_factory=_Cursor)
    count: int = 0
    last: float | None = None
    low: float | None = None
    high: float | None = None
    bytes_read: int = 0

    def update(self, path: MetricFile) -> None:
        chunk, restart = self.cursor.read_new(path)
        if restart:
            self.count, self.last, self.low, self.high = 0, None, None, None
        self.bytes_read += len(chunk)
        values = parse_values(chunk)
        if not len(values):
            return
        import numpy as np

        self.count += len(values)
        self.last = float(values[-1])
        finite = values[~np.isnan(values)]
        if len(finite):
            low, high = float(finite.min()), float(finite.max())
            self.low = low if self.low is None else min(self.low, low)
            self.high = high if self.high is None else max(self.high, high)

    def best(self, maximize: bool) -> float | None:
        return self.high if maximize else self.low


@dataclass
class Series:
    """Every point of one metric file, grown by the appended lines at each ``update``."""

    cursor: _Cursor = field(default_factory=_Cursor)
    parts: list[Any] = field(default_factory=list)
    bytes_read: int = 0

    def update(self, path: MetricFile) -> numpy.ndarray:
        """All points so far, as an (n, 3) array of step, value, time."""
        import numpy as np

        chunk, restart = self.cursor.read_new(path)
        if restart:
            self.parts = []
        self.bytes_read += len(chunk)
        rows = parse_lines(chunk)
        if len(rows):
            self.parts.append(rows)
        if len(self.parts) > 1:
            self.parts = [np.concatenate(self.parts)]
        return self.parts[0] if self.parts else np.zeros((0, 3))


class MetricStore:
    """The summaries and recently drawn series of every metric file the dashboard has read."""

    def __init__(self, max_series: int = MAX_SERIES) -> None:
        self.max_series = max_series
        self._summaries: dict[str, Summary] = {}  # keyed by path text: a 1,000-run table makes no Path per file
        self._series: OrderedDict[str, Series] = OrderedDict()
        self._lock = threading.Lock()  # requests run in a thread pool
        self._to_warm: list[str] = []
        self._warmer: threading.Thread | None = None

    def summary(self, path: MetricFile) -> Summary:
        """The file's summary, brought up to date (reads only what was appended)."""
        key = os.fspath(path)
        with self._lock:
            found = self._summaries.setdefault(key, Summary())
            found.update(key)
            return found

    def known(self, path: MetricFile) -> bool:
        return os.fspath(path) in self._summaries

    def warm(self, paths: list[str]) -> None:
        """Read the summaries of ``paths`` in a background thread (one at a time), so a cold runs table
        fills in at parsing speed rather than one request's budget per poll."""
        with self._lock:
            self._to_warm.extend(p for p in paths if p not in self._summaries)
            if self._warmer is not None and self._warmer.is_alive():
                return
            self._warmer = threading.Thread(target=self._warm_loop, name="expq-ui-warm", daemon=True)
            self._warmer.start()

    def _warm_loop(self) -> None:
        while True:
            with self._lock:
                if not self._to_warm:
                    self._warmer = None
                    return
                path = self._to_warm.pop()
            if not self.known(path):
                self.summary(path)

    def points(self, path: MetricFile) -> numpy.ndarray:
        """Every point of the file, brought up to date; the least recently drawn series are forgotten."""
        key = os.fspath(path)
        with self._lock:
            series = self._series.pop(key, None) or Series()
            self._series[key] = series
            while len(self._series) > self.max_series:
                self._series.popitem(last=False)
            return series.update(key)

    def bytes_read(self, path: MetricFile) -> int:
        """Bytes read from ``path`` for its points so far (what the tests check)."""
        series = self._series.get(os.fspath(path))
        return series.bytes_read if series else 0


def finite_or_none(value: float | None) -> float | None:
    """JSON has no NaN or infinity: those become null."""
    return None if value is None or not math.isfinite(value) else value
