"""What the GPUs of this host hold right now: memory, utilisation and the processes on each.

Read through NVML (the ``nvidia-ml-py`` package, imported only when a probe runs) or, when NVML cannot
be loaded, through ``nvidia-smi --query-gpu`` / ``--query-compute-apps``. Either may fail or hang (a
wedged driver makes both block); a probe is bounded by a timeout and fails with ``ProbeError``, which
the caller logs and works around. ``EXPQ_GPU_PROBE=nvml|smi`` forces one method (the tests force the
fake ``nvidia-smi`` they put on PATH; ``expq gpus --probe`` compares both on a real GPU).
"""
from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from expq._fs import which

__all__ = ["GpuProcess", "GpuInfo", "ProbeError", "Prober", "parse_smi_gpus", "parse_smi_apps", "gpu_from_nvml",
           "normalize_bus_id", "PROBE_TIMEOUT", "METHOD_VAR"]

PROBE_TIMEOUT = 10.0  # seconds a probe may take before it counts as hung
METHOD_VAR = "EXPQ_GPU_PROBE"
MIB = 1 << 20


@dataclass(frozen=True)
class GpuProcess:
    """A process holding memory on a GPU; ``used_bytes`` is None where the driver cannot tell."""

    pid: int
    used_bytes: int | None


@dataclass(frozen=True)
class GpuInfo:
    index: int
    uuid: str
    bus_id: str  # normalized by ``normalize_bus_id``
    name: str
    total_bytes: int
    used_bytes: int
    util: int | None  # percent busy over the driver's last sample period; None where not supported
    processes: tuple[GpuProcess, ...] = ()

    @property
    def free_bytes(self) -> int:
        return max(0, self.total_bytes - self.used_bytes)


class ProbeError(Exception):
    """The GPUs could not be read (no driver, a driver error, a hang); the message says which."""


def normalize_bus_id(bus_id: str) -> str:
    """``00000000:17:00.0`` (nvidia-smi, NVML) and ``0000:17:00.0`` (sysfs, legacy NVML) as one form."""
    text = bus_id.strip().lower()
    parts = text.split(":")
    if len(parts) == 2:
        parts = ["0", *parts]
    if len(parts) != 3:
        return text
    try:
        return f"{int(parts[0], 16):04x}:{parts[1]}:{parts[2]}"
    except ValueError:
        return text


# -- nvidia-smi -------------------------------------------------------------------------------------

SMI_GPU_FIELDS = "index,uuid,pci.bus_id,name,memory.total,memory.used,utilization.gpu"
SMI_APP_FIELDS = "gpu_uuid,pid,used_memory"


def _number(text: str) -> int | None:
    """A value of ``nvidia-smi --format=csv,nounits``; ``[N/A]``, ``[Not Supported]`` and the like give None."""
    text = text.strip()
    try:
        return int(float(text))
    except ValueError:
        return None


def parse_smi_gpus(text: str) -> list[dict[str, Any]]:
    """The rows of ``--query-gpu=SMI_GPU_FIELDS --format=csv,noheader,nounits`` (memory in MiB).

    Raises:
        ProbeError: a row that does not have the fields asked for.
    """
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) < 7:
            raise ProbeError(f"nvidia-smi printed an unexpected line: {line.strip()[:200]!r}")
        index, total, used = _number(fields[0]), _number(fields[-3]), _number(fields[-2])
        if index is None or total is None or used is None:
            raise ProbeError(f"nvidia-smi printed an unexpected line: {line.strip()[:200]!r}")
        rows.append({"index": index, "uuid": fields[1], "bus_id": normalize_bus_id(fields[2]),
                     "name": ", ".join(fields[3:-3]), "total_bytes": total * MIB, "used_bytes": used * MIB,
                     "util": _number(fields[-1])})
    return rows


def parse_smi_apps(text: str) -> dict[str, list[GpuProcess]]:
    """``--query-compute-apps=SMI_APP_FIELDS`` as processes by GPU UUID (unreadable lines skipped)."""
    apps: dict[str, list[GpuProcess]] = {}
    for line in text.splitlines():
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 3 or (pid := _number(fields[1])) is None:
            continue
        mib = _number(fields[2])
        apps.setdefault(fields[0], []).append(GpuProcess(pid, None if mib is None else mib * MIB))
    return apps


def _run_smi(smi: str, query: str, timeout: float) -> str:
    """One ``nvidia-smi`` call in its own session, killed as a group on timeout (a hung driver call
    may leave helpers behind that would hold the pipe open forever). subprocess is imported here:
    a worker without GPUs never probes, and every worker starts 2 ms sooner."""
    import subprocess

    proc = subprocess.Popen([smi, query, "--format=csv,noheader,nounits"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        raise ProbeError(f"nvidia-smi did not answer within {timeout:g} s") from None
    if proc.returncode != 0:
        message = (err.strip() or out.strip()).splitlines()
        if proc.returncode == 6 or (message and "No devices were found" in message[0]):
            return ""
        raise ProbeError(f"nvidia-smi failed (exit {proc.returncode}): {message[0][:200] if message else 'no message'}")
    return out


def probe_smi(timeout: float, smi: str | None) -> list[GpuInfo]:
    """Read the GPUs through the ``nvidia-smi`` at ``smi`` (None: there is none).

    Raises:
        ProbeError: no nvidia-smi, an error or a hang.
    """
    if smi is None:
        raise ProbeError("nvidia-smi not found")
    try:
        gpus = parse_smi_gpus(_run_smi(smi, f"--query-gpu={SMI_GPU_FIELDS}", timeout))
        apps = parse_smi_apps(_run_smi(smi, f"--query-compute-apps={SMI_APP_FIELDS}", timeout)) if gpus else {}
    except OSError as exc:
        raise ProbeError(f"cannot run nvidia-smi: {exc}") from None
    return [GpuInfo(processes=tuple(apps.get(row["uuid"], ())), **row) for row in gpus]


# -- NVML ---------------------------------------------------------------------------------------------

def _text(value: str | bytes) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def gpu_from_nvml(index: int, uuid: str | bytes, pci: Any, name: str | bytes, memory: Any, utilization: Any,
                  processes: list[Any]) -> GpuInfo:
    """One GPU from what NVML returns: ``pci.busId``, ``memory.total/.used`` (bytes), ``utilization.gpu``
    (None when the call is not supported), processes with ``.pid`` and ``.usedGpuMemory`` (None when
    unknown; compute and graphics lists may name one process twice: its largest use counts)."""
    used_by: dict[int, int | None] = {}
    for proc in processes:
        pid, used = int(proc.pid), proc.usedGpuMemory
        if used is not None:
            used = int(used)
            if used >= (1 << 64) - 1:  # NVML_VALUE_NOT_AVAILABLE through a binding that did not convert it
                used = None
        prior = used_by.get(pid)
        used_by[pid] = used if prior is None else max(prior, used or 0)
    return GpuInfo(index=index, uuid=_text(uuid), bus_id=normalize_bus_id(_text(pci.busId)), name=_text(name),
                   total_bytes=int(memory.total), used_bytes=int(memory.used),
                   util=None if utilization is None else int(utilization.gpu),
                   processes=tuple(GpuProcess(pid, used) for pid, used in sorted(used_by.items())))


def _nvml_read(nvml: Any) -> list[GpuInfo]:
    """Every GPU NVML can open; one that refuses (another cgroup's, or lost) is not ours to use."""
    gpus = []
    for index in range(nvml.nvmlDeviceGetCount()):
        try:
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            try:
                utilization = nvml.nvmlDeviceGetUtilizationRates(handle)
            except nvml.NVMLError_NotSupported:
                utilization = None
            processes = list(nvml.nvmlDeviceGetComputeRunningProcesses(handle))
            try:
                processes += nvml.nvmlDeviceGetGraphicsRunningProcesses(handle)
            except nvml.NVMLError_NotSupported:
                pass  # compute processes are what jobs are
            gpus.append(gpu_from_nvml(index, nvml.nvmlDeviceGetUUID(handle), nvml.nvmlDeviceGetPciInfo(handle),
                                      nvml.nvmlDeviceGetName(handle), nvml.nvmlDeviceGetMemoryInfo(handle),
                                      utilization, processes))
        except (nvml.NVMLError_NoPermission, nvml.NVMLError_GpuIsLost):
            continue
    return gpus


def _within(timeout: float, what: str, call: Callable[[], list[GpuInfo]]) -> list[GpuInfo]:
    """Run an in-process driver call on a daemon thread: a wedged driver blocks that thread, not the worker."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = call()
        except Exception as exc:  # noqa: BLE001 - handed to the caller as a ProbeError, never lost
            box["error"] = exc

    thread = threading.Thread(target=target, name="expq-nvml-probe", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise ProbeError(f"{what} did not answer within {timeout:g} s")
    if "error" in box:
        raise ProbeError(f"{what} failed: {box['error']}")
    result: list[GpuInfo] = box["value"]
    return result


# -- choosing a method ---------------------------------------------------------------------------------

class Prober:
    """Reads the GPUs through NVML, else ``nvidia-smi``; once NVML hangs, only ``nvidia-smi`` is tried."""

    def __init__(self, method: str | None = None, timeout: float = PROBE_TIMEOUT,
                 environ: Mapping[str, str] | None = None) -> None:
        environ = os.environ if environ is None else environ
        self.method = method or environ.get(METHOD_VAR, "auto")
        if self.method not in ("auto", "nvml", "smi"):
            raise ValueError(f"{METHOD_VAR} must be auto, nvml or smi, not {self.method!r}")
        self.timeout = timeout
        self.path = environ.get("PATH", os.defpath)
        # found now, as an absolute path: probes may run on another thread while the worker's main
        # thread has stepped into a job's folder to start it (a relative PATH entry would then mislead)
        self._smi = self._find_smi()
        self._nvml: Any = None
        self._nvml_problem = ""
        self.used = ""  # the method of the last successful probe

    def probe(self) -> list[GpuInfo]:
        """Every GPU of this host that this process can open, in NVML / nvidia-smi index order.

        Raises:
            ProbeError: neither method could read the GPUs; the message names both problems.
        """
        problems = []
        if self.method in ("auto", "nvml"):
            nvml = self._load_nvml()
            if nvml is not None:
                try:
                    gpus = _within(self.timeout, "NVML", lambda: _nvml_read(nvml))
                    self.used = "nvml"
                    return gpus
                except ProbeError as exc:
                    if "did not answer" in str(exc):
                        self._nvml, self._nvml_problem = None, str(exc)  # a hung thread holds it: never again
                    problems.append(str(exc))
            else:
                problems.append(self._nvml_problem)
        if self.method in ("auto", "smi"):
            try:
                gpus = probe_smi(self.timeout, self._smi or self._find_smi())
                self.used = "smi"
                return gpus
            except ProbeError as exc:
                problems.append(str(exc))
        raise ProbeError("; ".join(problems))

    def _find_smi(self) -> str | None:
        try:
            return os.path.abspath(which("nvidia-smi", self.path, os.getcwd()))
        except FileNotFoundError:
            return None

    def _load_nvml(self) -> Any:
        if self._nvml is not None or self._nvml_problem:
            return self._nvml
        try:
            import pynvml  # the nvidia-ml-py package: only a worker (or expq gpus) that probes loads it
        except ImportError:
            self._nvml_problem = "NVML: the nvidia-ml-py package is not installed"
            return None
        def start() -> list[GpuInfo]:
            pynvml.nvmlInit()
            return []

        try:
            _within(self.timeout, "NVML start-up", start)
        except ProbeError as exc:
            self._nvml_problem = f"NVML cannot be loaded ({str(exc).split(': ', 1)[-1]})"
            return None
        self._nvml = pynvml
        return pynvml
