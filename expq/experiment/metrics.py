"""Scalar metrics: a hot path that only appends a tuple, and a flusher that writes CSV lines.

``log_scalar`` appends ``(step, value, time)`` to an in-memory list; formatting and writing happen
in ``flush``, called by one background thread per process every ``interval`` seconds, on close
and at interpreter exit. Each flush appends one ``os.write`` per series (``O_APPEND``), so a file
is never rewritten and lines of two processes never interleave. CSV rather than JSON lines
because NaN and inf are not JSON, and ``step,value,time`` loads directly in numpy or pandas.

With TensorBoard enabled (``Experiment(..., tensorboard=True)`` or ``EXPQ_TENSORBOARD=1``) the same
flush also appends the points to an event file in the run's ``tensorboard/`` folder; the hot path
does not change, and numpy and the event encoder are imported by the flusher only then.
"""
from __future__ import annotations

import atexit
import itertools
import logging
import math
import numbers
import operator
import os
import threading
import time
import weakref
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from expq._fs import NotRegular, open_for_reading
from expq.contract import TENSORBOARD_DIR, TENSORBOARD_VAR
from expq.errors import InputError, NotFound
from expq.experiment.tree import relative_name

if TYPE_CHECKING:
    import numpy

__all__ = ["MetricsSink", "read_scalar", "read_scalar_since", "sound_points", "metric_path", "list_metrics", "tensorboard_wanted",
           "DEFAULT_INTERVAL", "TENSORBOARD_DIR", "TENSORBOARD_VAR"]

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 1.0
HEADER = "step,value,time\n"
# %r is the shortest text that reads back as the same number (0.4, not 0.40000000000000002), exact
# for ints, nan/inf as such; it costs about 20% more than %.17g, in the flusher, not in log_scalar.
# Time is seconds since the epoch to the millisecond, as MLflow keeps it.
_LINE = "%d,%r,%.3f\n"
_SUFFIX = ".csv"

_TRUE = {"1", "true", "yes", "on"}
_now = time.time


class _Series:
    """One metric of one run: its file, the points not yet written and the next auto step."""

    __slots__ = ("path", "buf", "steps", "created", "torn")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.buf: list[tuple[int, Any, float]] = []
        tail = _tail(path)  # of a file an earlier process wrote: a reopened series continues it
        self.steps = itertools.count(_next_step(tail))  # next() is atomic under the GIL: no lock per call
        self.created = path.exists()
        # Every write ends a line, so a file that does not was cut by a crash or a power loss (a
        # retried job appends to its first attempt's metrics): the first write here ends that line.
        self.torn = tail is not None and tail[-1:] not in (b"", b"\n")


def metric_path(directory: Path, name: str) -> Path:
    """The CSV file of metric ``name`` (``a/b`` makes a sub-folder) under ``directory``.

    Raises:
        InputError: an unsafe name.
    """
    rel = relative_name("metric", name)
    return directory.joinpath(*rel.parts[:-1], rel.name + _SUFFIX)


class MetricsSink:
    """The metrics of one run directory; ``log_scalar`` is the hot path, everything else is rare."""

    def __init__(self, directory: Path, interval: float = DEFAULT_INTERVAL) -> None:
        self.directory = directory
        self.interval = interval
        self.series: dict[str, _Series] = {}
        self._lock = threading.Lock()  # taken by flush only, never by log_scalar
        self.events: _LiveEvents | None = None
        _flusher.register(self)

    def enable_tensorboard(self, folder: Path | None = None) -> None:
        """Also write every point to a TensorBoard event file in ``folder`` (default ``<run>/tensorboard``)."""
        self.events = _LiveEvents(folder or self.directory.parent / TENSORBOARD_DIR)

    def log_scalar(self, name: str, value: Any, step: int | None = None) -> None:
        """Record one point; validation is two type checks unless the value is unusual.

        Raises:
            InputError: a non-numeric value, a non-integer step or an unsafe name.
        """
        series = self.series.get(name)
        if series is None:
            series = self._open(name)
        if type(value) is not float and type(value) is not int:
            value = _number(name, value)
        if step is None:
            step = next(series.steps)
        else:
            if type(step) is not int:
                step = _step(name, step)
            series.steps = itertools.count(step + 1)
        series.buf.append((step, value, _now()))

    def _open(self, name: str) -> _Series:
        path = metric_path(self.directory, name)
        series = _Series(path)
        return self.series.setdefault(name, series)

    def flush(self) -> None:
        """Append every buffered point to its file: one write per series."""
        with self._lock:
            written: list[tuple[str, list[tuple[int, Any, float]]]] = []
            for name, series in list(self.series.items()):
                buf = series.buf
                count = len(buf)
                if not count:
                    continue
                chunk = buf[:count]
                del buf[:count]  # points appended meanwhile stay in the buffer
                data = "".join(map(_LINE.__mod__, chunk)).encode()
                _append(series, data)
                written.append((name, chunk))
            if self.events is not None and written:
                self._write_events(self.events, written)

    def _write_events(self, events: _LiveEvents, written: list[tuple[str, list[tuple[int, Any, float]]]]) -> None:
        """After the CSV, which is the record: the event file is a view of it, whose failure (a full
        disk) must not fail the run. The next flush starts a new file rather than append after a torn
        record, which TensorBoard's reader would stop at; ``expq export tensorboard`` restores the rest."""
        try:
            events.write(written)
        except OSError:
            log.exception("could not write the TensorBoard events of %s; the CSV has every point", self.directory)
            events.path = None

    def close(self) -> None:
        """Flush and stop the periodic flushing of this sink."""
        self.flush()
        _flusher.unregister(self)

    def drop_pending(self) -> None:
        """Forget unwritten points: used in a forked child, whose buffers belong to the parent."""
        for series in self.series.values():
            del series.buf[:]
        if self.events is not None:
            self.events.path = None  # the parent's event file is the parent's: start our own


class _LiveEvents:
    """One run's live event file, named after the process, appended to by ``flush`` only."""

    __slots__ = ("folder", "path")

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path: Path | None = None

    def write(self, batches: list[tuple[str, list[tuple[int, Any, float]]]]) -> None:
        import numpy as np

        from expq.experiment import events

        parts = []
        if self.path is None:
            self.folder.mkdir(parents=True, exist_ok=True)
            now = _now()
            self.path = self.folder / events.event_file_name(f"{os.getpid()}.{id(self):x}", now)
            parts.append(events.file_version_record(now))
        for name, chunk in batches:
            count = len(chunk)
            steps = np.fromiter(map(operator.itemgetter(0), chunk), dtype=np.int64, count=count)
            try:
                values = np.fromiter(map(operator.itemgetter(1), chunk), dtype=np.float64, count=count)
            except OverflowError:  # an int beyond float64
                values = np.fromiter(map(_as_float, chunk), dtype=np.float64, count=count)
            times = np.fromiter(map(operator.itemgetter(2), chunk), dtype=np.float64, count=count).round(3)  # as the CSV
            parts.append(events.scalar_records(name, steps, values, times))
        _append_bytes(self.path, b"".join(parts))


def _as_float(point: tuple[int, Any, float]) -> float:
    value = point[1]
    try:
        return float(value)
    except OverflowError:  # an int beyond float64: TensorBoard keeps float32 anyway
        return math.inf if value > 0 else -math.inf


def tensorboard_wanted(flag: bool | None, environ: Mapping[str, str] | None = None) -> bool:
    """``flag`` when given, else whether ``$EXPQ_TENSORBOARD`` is set to 1/true/yes/on."""
    if flag is not None:
        return bool(flag)
    env = os.environ if environ is None else environ
    return env.get(TENSORBOARD_VAR, "").strip().lower() in _TRUE


def _append(series: _Series, data: bytes) -> None:
    if not series.created:
        series.path.parent.mkdir(parents=True, exist_ok=True)
        # Create the file with its header in one step (link of a complete temp file), so two
        # processes creating the same metric never write two headers or a line before it.
        tmp = series.path.with_name(f".{series.path.name}.{os.getpid()}.{threading.get_ident()}")
        tmp.write_text(HEADER)
        try:
            os.link(tmp, series.path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
        series.created = True
    if series.torn:
        data, series.torn = b"\n" + data, False
    _append_bytes(series.path, data)


def _append_bytes(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o644)  # a FIFO: ENXIO, not a hang
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
    finally:
        os.close(fd)


def _number(name: str, value: Any) -> int | float:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    item = getattr(value, "item", None)  # numpy 0-d arrays, one-element torch tensors
    if callable(item) and not isinstance(value, (str, bytes)):
        try:
            inner = item()
        except (ValueError, RuntimeError, TypeError):
            inner = None
        if isinstance(inner, numbers.Real):
            return _number(name, inner)
    raise InputError(f"metric {name!r}: value {value!r} ({type(value).__name__}) is not a real number")


def _step(name: str, step: Any) -> int:
    if isinstance(step, numbers.Integral) and not isinstance(step, bool):
        return int(step)
    raise InputError(f"metric {name!r}: step {step!r} ({type(step).__name__}) is not an integer")


def _tail(path: Path) -> bytes | None:
    """The last 4 KiB of a metric file; None when it is absent or no file (a folder, a FIFO): its
    steps then start at 0, and the append says what is wrong."""
    try:
        with open_for_reading(path) as handle:
            handle.seek(max(0, handle.seek(0, os.SEEK_END) - 4096))
            return handle.read()
    except OSError:
        return None


def _next_step(tail: bytes | None) -> int:
    """The step after the last one in a metric file's ``tail``."""
    for line in reversed((tail or b"").splitlines()):
        head = line.split(b",", 1)[0]
        if head.lstrip(b"-").isdigit():
            return int(head) + 1
    return 0


def read_scalar(directory: Path, name: str) -> numpy.ndarray:
    """A structured array with fields ``step`` (int64), ``value`` and ``time`` (float64).

    Raises:
        NotFound: no metric of that name was logged in ``directory``.
    """
    return read_scalar_since(directory, name, 0)[0]


def read_scalar_since(directory: Path, name: str, offset: int) -> tuple[numpy.ndarray, int, int]:
    """The points whose lines start at byte ``offset`` or later, and the byte range read.

    Returns ``(points, start, end)``: ``end`` is the offset after the last complete line, to pass
    next time, so a reader that comes back (an exporter on a live sweep) parses only what was
    appended since. ``start`` is 0 rather than ``offset`` when the file is now shorter than
    ``offset`` (it was replaced), and then every point is returned.

    Raises:
        NotFound: no metric of that name was logged in ``directory``.
    """
    import numpy as np

    path = metric_path(directory, name)
    try:
        with open_for_reading(path) as handle:
            start = offset if offset <= os.fstat(handle.fileno()).st_size else 0
            handle.seek(start)
            data = handle.read()
    except FileNotFoundError:
        raise NotFound("metric", f"{name} (in {directory.parent})") from None
    except (NotRegular, IsADirectoryError):  # something else in its place (a job may leave anything): no points
        start, data = 0, b""
    end = data.rfind(b"\n") + 1  # a line torn by a crash, or being written, is not a point yet
    body = data[:end]
    if start == 0:
        body = body[body.find(b"\n") + 1:] if body.startswith(HEADER.encode()) else body
    dtype = np.dtype([("step", "<i8"), ("value", "<f8"), ("time", "<f8")])
    try:
        lines = body.decode().splitlines()
        points = np.loadtxt(lines, delimiter=",", dtype=dtype, ndmin=1) if lines else np.zeros(0, dtype=dtype)
    except ValueError:  # a damaged line (a crash's torn write, zeros from a power loss): keep the others
        points = np.array(sound_points(body), dtype=dtype)
    return points, start, start + end


def sound_points(body: bytes) -> list[tuple[int, float, float]]:
    """The lines of ``body`` that are ``step,value,time``, parsed; the others (cut by a crash, zeros
    from a power loss, a header, anything else) are skipped. The slow path of every reader."""
    points = []
    for line in body.split(b"\n"):
        fields = line.split(b",")
        if len(fields) == 3:
            try:
                points.append((int(fields[0]), float(fields[1]), float(fields[2])))
            except ValueError:
                continue
    return points


def list_metrics(directory: Path) -> list[str]:
    """Names of the metrics logged under ``directory`` (sub-folders joined with '/'), sorted."""
    if not directory.is_dir():
        return []
    names = []
    for path in directory.rglob("*" + _SUFFIX):
        if not path.name.startswith("."):
            names.append(path.relative_to(directory).as_posix()[: -len(_SUFFIX)])
    return sorted(names)


class _Flusher:
    """The one thread per process that flushes every open sink on its interval."""

    def __init__(self) -> None:
        self._sinks: weakref.WeakSet[MetricsSink] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def register(self, sink: MetricsSink) -> None:
        with self._lock:
            self._sinks.add(sink)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="expq-metrics-flusher", daemon=True)
                self._thread.start()
            else:
                self._wake.set()  # a shorter interval may have arrived

    def unregister(self, sink: MetricsSink) -> None:
        with self._lock:
            self._sinks.discard(sink)

    def flush_all(self) -> None:
        for sink in list(self._sinks):
            try:
                sink.flush()
            except OSError:  # a vanished run directory must not stop the others from flushing
                log.exception("could not flush metrics of %s", sink.directory)

    def _loop(self) -> None:
        while True:
            sinks = list(self._sinks)
            wait = min((s.interval for s in sinks), default=DEFAULT_INTERVAL)
            self._wake.wait(max(0.01, wait))
            self._wake.clear()
            self.flush_all()

    def after_fork_in_child(self) -> None:
        """Locks may be held by threads that do not exist in the child; the parent's points are its own."""
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._thread = None
        sinks = list(self._sinks)
        for sink in sinks:
            sink._lock = threading.Lock()
            sink.drop_pending()
        if sinks:
            self.register(sinks[0])


_flusher = _Flusher()
atexit.register(_flusher.flush_all)
os.register_at_fork(after_in_child=_flusher.after_fork_in_child)
