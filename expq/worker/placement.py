"""Placing jobs on GPUs: whole GPUs, or a share of one by memory, never where someone else is.

A job without ``--gpu-mem`` takes whole GPUs that nobody on this host holds. A job with it takes a
seat on GPUs that have fewer than ``--jobs-per-gpu`` holders and at least that much memory free now,
less what was promised to jobs started there in the last ``PROMISE_WINDOW`` seconds that have not
allocated it yet (a job's promise shrinks by what its processes already hold). Among the GPUs that
fit, the least shared, then the freest, comes first: jobs spread before they pack. By default no job
starts on a GPU where a process that is no expq job of this user holds more than ``--foreign-mem``;
such a job waits, and nothing is ever killed for it.

What a GPU holds comes from a probe (``gpuprobe``), at most every ``PROBE_INTERVAL`` seconds and only
while a job waits for a GPU or GPU jobs run. When the probe fails, hangs or cannot match a GPU, that
GPU's memory and processes are unknown: whole-GPU jobs go on as before, and a ``--gpu-mem`` job then
takes the GPU alone (it cannot know whether it fits beside another), so nothing is over-committed.
"""
from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from expq.queue.result import gpu_shape_key
from expq.queue.spec import JobSpec, format_size
from expq.worker.gpumatch import match_ids
from expq.worker.gpuprobe import PROBE_TIMEOUT, GpuInfo, Prober
from expq.worker.gpus import GpuLocks, Holders, Seat, lock_key
from expq.worker.gpuwatch import PROBE_WAIT, GpuWatch

__all__ = ["GpuPolicy", "GpuView", "Foreign", "Owners", "Placer", "choose",
           "PROMISE_WINDOW", "DEFAULT_FOREIGN_MEM"]

log = logging.getLogger(__name__)

PROMISE_WINDOW = 60.0  # seconds a started job has to allocate what it asked for
DEFAULT_FOREIGN_MEM = 500 << 20

Reservation = list[tuple[str, int]]


@dataclass(frozen=True)
class GpuPolicy:
    jobs_per_gpu: int = 1
    foreign_mem: int = DEFAULT_FOREIGN_MEM
    ignore_foreign: bool = False
    probe_timeout: float = PROBE_TIMEOUT


@dataclass(frozen=True)
class Foreign:
    """A process on a GPU that is no expq job of this user."""

    pid: int
    user: str
    used_bytes: int | None


@dataclass(frozen=True)
class GpuView:
    """One GPU as a placement decision sees it."""

    id: str
    info: GpuInfo | None  # None: memory and processes unknown
    holders: Holders
    blocking: tuple[Foreign, ...]  # foreign processes over the threshold
    outstanding: int  # bytes promised to recent jobs and not allocated yet
    listed: int = 0  # bytes the probe's process list shows on this GPU

    @property
    def free(self) -> int | None:
        """Free memory less promises. The used memory and the process list are two readings (two
        nvidia-smi calls, two NVML calls): a job's allocation may be in the list but not yet in the
        used memory, and then subtracting it from the job's promise must not free it twice."""
        if self.info is None:
            return None
        used = max(self.info.used_bytes, self.listed)
        return max(0, self.info.total_bytes - used - self.outstanding)


class Owners:
    """Which expq job (root, id) a GPU process belongs to, read from its environment (children
    inherit ``EXPQ_JOB_ID``); another user's process is unreadable, hence foreign. Cached by pid."""

    def __init__(self) -> None:
        self._cache: dict[int, tuple[float, tuple[str, int] | None, str]] = {}

    def of(self, pid: int) -> tuple[tuple[str, int] | None, str]:
        import psutil

        try:
            process = psutil.Process(pid)
            started = process.create_time()
        except (psutil.Error, OSError):
            return None, "?"  # gone, or in another pid namespace: counted as someone else's
        cached = self._cache.get(pid)
        if cached is not None and cached[0] == started:
            return cached[1], cached[2]
        try:
            user = process.username()
        except (psutil.Error, OSError, KeyError):
            user = "?"
        try:
            env = process.environ()
            job = env.get("EXPQ_JOB_ID", "")
            owner = (env.get("EXPQ_ROOT", ""), int(job)) if job.isdigit() else None
        except (psutil.Error, OSError):
            owner = None
        self._cache[pid] = (started, owner, user)
        return owner, user

    def forget_except(self, pids: set[int]) -> None:
        self._cache = {pid: entry for pid, entry in self._cache.items() if pid in pids}


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def _foreign_reason(views: Sequence[GpuView]) -> str:
    blocked = [v for v in views if v.blocking]
    procs = list({f.pid: f for v in blocked for f in v.blocking}.values())
    who = "; ".join(f"pid {f.pid}, {f.user}" for f in procs[:3]) + ("; ..." if len(procs) > 3 else "")
    ids = ",".join(v.id for v in blocked)
    if len(blocked) == 1:
        return f"GPU {ids} in use by {'another process' if len(procs) == 1 else 'other processes'} ({who})"
    return f"GPUs {ids} in use by other processes ({who})"


def choose(views: Sequence[GpuView], count: int, gpu_mem: int | None, policy: GpuPolicy) -> tuple[list[str] | None, str]:
    """The GPUs a job needing ``count`` GPUs (and ``gpu_mem`` bytes on each, when set) gets now, or
    None and why it waits ("" when it only waits for this worker's own jobs to end)."""
    if count > len(views):
        return None, f"needs {_plural(count, 'GPU')} (this worker has {len(views)})"
    usable = [v for v in views if not v.blocking and not v.holders.whole]
    if gpu_mem is None:
        fits = [v for v in usable if v.holders.count == 0]
        if len(fits) >= count:
            return [v.id for v in fits[:count]], ""
    else:
        fits = [v for v in usable if len(v.holders.seats) < policy.jobs_per_gpu
                and (v.holders.count == 0 if v.free is None else v.free >= gpu_mem)]
        if len(fits) >= count:
            fits.sort(key=lambda v: (len(v.holders.seats), -(v.free or 0)))
            return [v.id for v in fits[:count]], ""
    unblocked = [v for v in views if not v.blocking]
    if gpu_mem is not None:
        if sum(v.free is None or v.free >= gpu_mem for v in views) < count:  # short of memory, whoever holds it
            best = max((v for v in views if v.free is not None), key=lambda v: v.free or 0)
            return None, (f"needs {format_size(gpu_mem)} on {_plural(count, 'GPU')} "
                          f"(most free: GPU {best.id}, {format_size(best.free or 0)})")
        unblocked = [v for v in unblocked if v.free is None or v.free >= gpu_mem]
    if len(unblocked) < count:
        return None, _foreign_reason(views)
    shareable = [v for v in unblocked if not v.holders.whole]
    full = [v for v in shareable if len(v.holders.seats) >= policy.jobs_per_gpu]
    if gpu_mem is not None and full and len(shareable) - len(full) < count:
        k = policy.jobs_per_gpu
        return None, (f"GPU{'s' if len(full) > 1 else ''} {','.join(v.id for v in full)} "
                      f"{'each ' if len(full) > 1 else ''}run{'' if len(full) > 1 else 's'} {_plural(k, 'job')} "
                      f"(--jobs-per-gpu {k})")
    return None, ""  # the GPUs are taken by expq jobs: it waits its turn


class Placer:
    """One worker's GPU decisions: probing (cached), the view of each GPU, reservations, wait reasons."""

    def __init__(self, gpus: tuple[str, ...], locks: GpuLocks, policy: GpuPolicy, root: str,
                 prober: Prober | None = None) -> None:
        self.gpus = gpus
        self.locks = locks
        self.policy = policy
        self.root = root
        self.prober = prober or Prober(timeout=policy.probe_timeout)
        self.watch = GpuWatch(self.prober)
        self.owners = Owners()
        self.reasons: dict[str, str] = {}  # shape_key -> why such jobs wait, from the last pass
        self._unready = False  # in this pass, a probe was still running: GPU jobs wait for the next
        self._stalled = False  # another worker held the placement turn too long (logged once)

    def start(self, now: float) -> None:
        """Probe once (waiting for it up to its timeout) and name each GPU's locks by its UUID where the
        probe matches it: the names must not change while the worker runs."""
        if not self.gpus:
            return
        _, snapshot = self.watch.snapshot(now, wait=self.policy.probe_timeout + 1)
        self._forget_owners(snapshot)
        matched = match_ids(self.gpus, snapshot or [])
        self.locks.keys = {gpu: lock_key(gpu, matched.get(gpu)) for gpu in self.gpus}
        if snapshot is not None:
            unmatched = [gpu for gpu in self.gpus if gpu not in matched]
            log.info("GPUs read through %s: %s", self.prober.used, ", ".join(
                f"{gpu}={matched[gpu].name} {format_size(matched[gpu].total_bytes)}" for gpu in matched) or "none")
            if unmatched:
                log.warning("GPU(s) %s match no GPU the probe sees; their memory and processes are unknown",
                            ",".join(unmatched))

    def snapshot(self, now: float, wait: bool = True) -> tuple[bool, list[GpuInfo] | None]:
        """``GpuWatch.snapshot``: waits for a running probe once per pass at most."""
        ready, snapshot = self.watch.snapshot(now, wait=0.0 if self._unready or not wait else PROBE_WAIT)
        self._unready = self._unready or not ready
        self._forget_owners(snapshot)
        return ready, snapshot

    def _forget_owners(self, snapshot: list[GpuInfo] | None) -> None:
        if snapshot is not None:
            self.owners.forget_except({p.pid for g in snapshot for p in g.processes})

    def new_pass(self) -> None:
        """A fresh look at the queue: reasons are recomputed for the jobs passed over in it."""
        self.reasons = {}
        self._unready = False

    def reserve(self, spec: JobSpec, now: float) -> Reservation | None:
        """GPUs for ``spec`` (``[]`` for a CPU job), locked for it, or None with the reason kept."""
        if spec.gpus == 0:
            return []
        if spec.gpus > len(self.gpus):  # status says so (needs N GPUs, largest worker has M)
            return None
        key = gpu_shape_key(spec.gpus, spec.gpu_mem)
        if key in self.reasons:  # a job of the same needs did not fit in this pass: neither does this one
            return None
        ready, snapshot = self.snapshot(now)
        if not ready:  # a probe is still running: no GPU job starts on GPUs nobody has looked at
            self.reasons[key] = ""
            return None
        try:
            with self.locks.placement():
                self._stalled = False
                views = self.views(snapshot, now)
                chosen, reason = choose(views, spec.gpus, spec.gpu_mem, self.policy)
                if chosen is None:
                    self.reasons[key] = reason
                    return None
                if spec.gpu_mem is None:
                    return self.locks.take_whole(chosen, Seat(0, now, spec.id, self.root))
                return self.locks.take_seats(chosen, Seat(spec.gpu_mem, now, spec.id, self.root))
        except TimeoutError as exc:
            if not self._stalled:
                log.warning("not placing GPU jobs while %s; trying again each pass", str(exc).removeprefix("the "))
            self._stalled = True
            self.reasons[key] = ""  # nothing else in this pass waits for it again
            return None

    def views(self, snapshot: list[GpuInfo] | None, now: float) -> list[GpuView]:
        """Each GPU's holders (read from the locks: call inside ``locks.placement()``), processes and promises."""
        matched = match_ids(self.gpus, snapshot) if snapshot is not None else {}
        views = []
        for gpu in self.gpus:
            info = matched.get(gpu)
            holders = self.locks.holders(gpu)
            used_by_job: dict[tuple[str, int], int] = {}
            foreign = []
            for proc in info.processes if info is not None else ():
                owner, user = self.owners.of(proc.pid)
                if owner is None:
                    foreign.append(Foreign(proc.pid, user, proc.used_bytes))
                else:
                    used_by_job[owner] = used_by_job.get(owner, 0) + (proc.used_bytes or 0)
            outstanding = sum(max(0, seat.promise - used_by_job.get((seat.root, seat.job), 0))
                              for seat in holders.seats if now - seat.at < PROMISE_WINDOW)
            blocking = () if self.policy.ignore_foreign else tuple(
                f for f in foreign if f.used_bytes is None or f.used_bytes > self.policy.foreign_mem)
            listed = sum(proc.used_bytes or 0 for proc in info.processes) if info is not None else 0
            views.append(GpuView(gpu, info, holders, blocking, outstanding, listed))
        return views

    def possible(self, spec: JobSpec) -> bool:
        """Whether this worker could ever run ``spec`` (enough GPUs, and as much memory on a GPU when known)."""
        if spec.gpus > len(self.gpus):
            return False
        if spec.gpu_mem is None or self.watch.gpus is None:
            return True
        totals = [gpu.total_bytes for gpu in match_ids(self.gpus, self.watch.gpus).values()]
        return len(totals) < len(self.gpus) or sum(t >= spec.gpu_mem for t in totals) >= spec.gpus

    def job_usage(self, jobs: Mapping[int, tuple[str, ...]], now: float) -> dict[int, tuple[int, int | None]]:
        """GPU memory held by each job's processes and the mean utilisation of its GPUs; {} without a probe."""
        _, snapshot = self.snapshot(now, wait=False)  # sampling never waits: the next sample will do
        if snapshot is None:
            return {}
        matched = match_ids(self.gpus, snapshot)
        usage = {}
        for job_id, gpus in jobs.items():
            infos = [matched[gpu] for gpu in gpus if gpu in matched]
            if not infos:
                continue
            held = sum(proc.used_bytes or 0 for info in infos for proc in info.processes
                       if self.owners.of(proc.pid)[0] == (self.root, job_id))
            utils = [info.util for info in infos if info.util is not None]
            usage[job_id] = (held, round(sum(utils) / len(utils)) if utils else None)
        return usage
