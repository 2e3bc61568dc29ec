"""Which GPUs a worker may use, and the per-GPU locks through which every worker of this user on this
host agrees who holds which GPU: a whole-GPU job alone, or up to ``--jobs-per-gpu`` sharing jobs.

A GPU lock is an ``flock`` on a file named after the GPU in a folder only this user can write (under
``$XDG_RUNTIME_DIR``, else ``/tmp/expq-gpu-locks-<uid>``, checked: a folder another user made first
is refused, never used). The kernel drops a lock when its holder dies, and the worker passes the
locked descriptor to the job's child, so the GPU stays locked while an orphaned child of a killed
worker still runs on it. expq never deletes a lock file, and in a private folder nobody else can, so a
lock cannot vanish under its holder; a file replaced between opening and locking it is not trusted.

Each GPU has a main lock file, held by a whole-GPU job, and seat files, one held by each job sharing
it; a seat file also records what its holder promised (bytes, when, which job), so every worker sees
the promises of the others. Counting holders and taking a lock happen under one short host-wide
placement lock, so two workers never both see the last free seat or the same free memory.
"""
from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from expq.contract import GPUS_VAR
from expq.errors import InputError
from expq.worker.gpuprobe import PROBE_TIMEOUT, GpuInfo, ProbeError, Prober
from expq.worker.lock_dir import check_lock_dir, lock_dir_name

__all__ = ["parse_gpus", "detect_gpus", "GpuLocks", "Seat", "default_lock_dir"]

log = logging.getLogger(__name__)

MAX_SEATS = 64  # holders of one GPU; --jobs-per-gpu is bounded by the same number
PLACEMENT_TIMEOUT = 2.0  # seconds to wait for another worker's placement turn
SEAT_BYTES = 8192  # a seat record is padded to this size: rewriting it in place needs no ftruncate (~8 ms here)


def parse_gpus(option: str, environ: Mapping[str, str] | None = None,
               timeout: float = PROBE_TIMEOUT) -> tuple[str, ...]:
    """``--gpus``: ``auto``, ``none`` or a comma list of ids (indices, UUIDs or PCI bus ids).

    Raises:
        InputError: an empty or duplicated id, or one this host does not have (checked against
            ``CUDA_VISIBLE_DEVICES`` when set, else against the GPUs a probe finds, when it works).
    """
    environ = os.environ if environ is None else environ
    if option == "none":
        return ()
    if option == "auto":
        return detect_gpus(environ, timeout)
    ids = tuple(part.strip() for part in option.split(","))
    if not all(ids) or len(set(ids)) != len(ids):
        raise InputError(f"invalid --gpus {option!r}: expected auto, none or distinct ids like 0,1,2")
    unknown, known = _unknown_ids(ids, environ, timeout)
    if unknown:
        raise InputError(f"invalid --gpus {option!r}: no GPU {', '.join(unknown)} on this host "
                         f"(it has {', '.join(known) or 'none'})")
    return ids


def _unknown_ids(ids: tuple[str, ...], environ: Mapping[str, str], timeout: float) -> tuple[list[str], list[str]]:
    """The ids that name no GPU of this process, and the ids it has; nothing is unknown when nothing can tell."""
    visible = environ.get(GPUS_VAR)
    if visible is not None:
        known = _split(visible)
        return [gpu for gpu in ids if gpu not in known], list(known)
    try:
        gpus = Prober(timeout=timeout, environ=environ).probe()
    except ProbeError:
        return [], []
    from expq.worker.gpumatch import match_id

    return ([gpu for gpu in ids if match_id(gpu, gpus) is None],
            [f"{position} ({gpu.uuid})" for position, gpu in enumerate(sorted(gpus, key=lambda g: g.bus_id))])


def detect_gpus(environ: Mapping[str, str], timeout: float = PROBE_TIMEOUT) -> tuple[str, ...]:
    """The GPUs this process may use: ``CUDA_VISIBLE_DEVICES`` when set (as SLURM does), else the GPUs
    a probe finds (as indices in PCI bus order, which jobs get), else none, saying why in the log."""
    visible = environ.get(GPUS_VAR)
    if visible is not None:
        return _split(visible)
    try:
        gpus = Prober(timeout=timeout, environ=environ).probe()
    except ProbeError as exc:
        log.warning("no GPU found (%s); running without GPUs", exc)
        return ()
    return tuple(str(position) for position in range(len(gpus)))


def _split(visible: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in visible.split(",") if v.strip() and v.strip() != "-1")


def lock_key(gpu_id: str, gpu: GpuInfo | None) -> str:
    """The name a GPU's lock files carry: its UUID when known, so workers naming it differently
    (``2`` and ``GPU-8f3...``) still share its locks; else the id as given."""
    return (gpu.uuid if gpu is not None else gpu_id).replace("/", "_")


def default_lock_dir(environ: Mapping[str, str] | None = None) -> Path:
    """The lock folder of this user on this host (see ``lock_dir``)."""
    return Path(lock_dir_name(environ))


@dataclass(frozen=True)
class Seat:
    """One holder of a shared GPU, as its seat file records it."""

    promise: int  # bytes promised to the job at ``at`` (0 when unknown)
    at: float
    job: int
    root: str

    @classmethod
    def read(cls, fd: int) -> Seat:
        try:
            data: Any = json.loads(os.pread(fd, SEAT_BYTES, 0).strip() or b"{}")
            return cls(int(data.get("promise", 0)), float(data.get("at", 0.0)), int(data.get("job", 0)),
                       str(data.get("root", "")))
        except (ValueError, TypeError, AttributeError, OSError):  # written by another version, or torn
            return cls(0, 0.0, 0, "")


@dataclass(frozen=True)
class Holders:
    """Who holds one GPU now: a whole-GPU job (``owner``: its record, when its worker wrote one), and the
    seats of sharing jobs."""

    whole: bool
    seats: tuple[Seat, ...]
    owner: Seat | None = None

    @property
    def count(self) -> int:
        return len(self.seats) + (1 if self.whole else 0)


def _record(fd: int, seat: Seat | None) -> None:
    """Write the holder's record into a lock file it just locked (blank for none: no stale owner)."""
    record = b"" if seat is None else json.dumps(
        {"promise": seat.promise, "at": seat.at, "job": seat.job, "root": seat.root}).encode()
    if len(record) >= SEAT_BYTES:  # a root path of thousands of characters
        os.ftruncate(fd, 0)
    os.pwrite(fd, record.ljust(SEAT_BYTES), 0)


class GpuLocks:
    """Reserves GPUs for jobs; a reservation is a list of (gpu id, locked file descriptor).

    Raises (constructor): InsecureQueue when the lock folder is not safe to use.
    """

    def __init__(self, gpus: tuple[str, ...], lock_dir: Path, keys: Mapping[str, str] | None = None) -> None:
        self.gpus = gpus
        self.lock_dir = lock_dir
        self.keys = dict(keys or {})
        self._held: dict[int, str] = {}  # descriptor -> gpu id, for every lock this worker holds
        if gpus:
            check_lock_dir(lock_dir)

    def _key(self, gpu: str) -> str:
        return self.keys.get(gpu) or gpu.replace("/", "_")

    @contextmanager
    def placement(self, timeout: float = PLACEMENT_TIMEOUT) -> Iterator[None]:
        """The host-wide turn in which one worker counts holders and takes locks (held for a few
        syscalls: no probe runs inside it).

        Raises:
            TimeoutError: another worker held it for ``timeout`` seconds (stopped with SIGSTOP, or
                frozen): this worker places nothing now rather than stall its own jobs' supervision.
        """
        fd = os.open(self.lock_dir / "placement.lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            deadline = time.monotonic() + timeout
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if time.monotonic() >= deadline:
                        raise TimeoutError(f"the GPU placement lock in {self.lock_dir} is held by a stalled "
                                           "worker") from None
                    time.sleep(0.002)  # held for a few syscalls by a live worker
            yield
        finally:
            os.close(fd)

    def acquire(self, count: int) -> list[tuple[str, int]] | None:
        """Lock ``count`` whole GPUs nobody on this host holds, in order, or None (nothing stays locked)."""
        with self.placement():
            free = [gpu for gpu in self.gpus if self.holders(gpu).count == 0]
            return self.take_whole(free[:count]) if len(free) >= count else None

    def holders(self, gpu: str) -> Holders:
        """Who holds ``gpu`` now (call inside ``placement()`` to act on the answer)."""
        key = self._key(gpu)
        owner = self._holder(self.lock_dir / f"gpu-{key}.lock")
        seats = []
        prefix = f"gpu-{key}.seat-"
        try:
            names = sorted(n for n in os.listdir(self.lock_dir) if n.startswith(prefix) and n.endswith(".lock"))
        except FileNotFoundError:  # no worker ever locked a GPU here
            names = []
        for name in names:
            seat = self._holder(self.lock_dir / name)
            if seat is not None:
                seats.append(seat)
        return Holders(owner is not None, tuple(seats), owner if owner is not None and owner.job else None)

    def take_whole(self, gpus: list[str], seat: Seat | None = None) -> list[tuple[str, int]] | None:
        """Lock these GPUs whole (inside ``placement()``, after checking they have no holder), recording
        which job holds them (``seat``; its promise is not used) for ``expq gpus``."""
        taken: list[tuple[str, int]] = []
        for gpu in gpus:
            fd = self._lock(self.lock_dir / f"gpu-{self._key(gpu)}.lock")
            if fd is None:
                self.release(taken)
                return None
            _record(fd, seat)
            taken.append((gpu, fd))
            self._held[fd] = gpu
        return taken

    def take_seats(self, gpus: list[str], seat: Seat) -> list[tuple[str, int]] | None:
        """A seat on each of these GPUs, recording ``seat`` in it (inside ``placement()``); None, with
        nothing taken, when one is held whole or has ``MAX_SEATS`` holders."""
        taken: list[tuple[str, int]] = []
        for gpu in gpus:
            if self._is_held(self.lock_dir / f"gpu-{self._key(gpu)}.lock"):  # a whole-GPU job is there
                self.release(taken)
                return None
            fd = next((fd for n in range(MAX_SEATS)
                       if (fd := self._lock(self.lock_dir / f"gpu-{self._key(gpu)}.seat-{n}.lock")) is not None),
                      None)
            if fd is None:
                self.release(taken)
                return None
            _record(fd, seat)
            taken.append((gpu, fd))
            self._held[fd] = gpu
        return taken

    def _open(self, path: Path) -> int | None:
        try:
            return os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return None

    def _is_held(self, path: Path) -> bool:
        return self._holder(path) is not None

    def _holder(self, path: Path) -> Seat | None:
        """The record in a lock file someone holds; None when nobody holds it."""
        fd = self._open(path)
        if fd is None:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return Seat.read(fd)
        finally:
            os.close(fd)
        return None

    def _lock(self, path: Path) -> int | None:
        """The locked descriptor of this lock file, or None while someone holds it."""
        for _ in range(3):  # the file may be replaced between open and lock: lock the current one
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                return None
            try:
                current = os.stat(path, follow_symlinks=False).st_ino
            except FileNotFoundError:
                current = -1
            if current == os.fstat(fd).st_ino:
                return fd
            os.close(fd)  # we locked a file that was deleted: its old holder may still run there
        return None

    def release(self, reservation: list[tuple[str, int]]) -> None:
        for _, fd in reservation:
            self._held.pop(fd, None)
            os.close(fd)
