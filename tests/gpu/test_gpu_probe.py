"""Reading GPUs: nvidia-smi's CSV, NVML's structures (recorded as the nvidia-ml-py binding returns
them), matching a worker's GPU ids by UUID, PCI bus id or PCI order, and a probe that fails or hangs."""
from __future__ import annotations

import time
from types import SimpleNamespace

import pytest

from expq.worker.gpumatch import match_id, match_ids
from expq.worker.gpuprobe import (
    GpuInfo,
    GpuProcess,
    ProbeError,
    Prober,
    gpu_from_nvml,
    normalize_bus_id,
    parse_smi_apps,
    parse_smi_gpus,
)

GIB = 1 << 30
MIB = 1 << 20

SMI_GPUS = """0, GPU-8f3c1d2e-aaaa-bbbb-cccc-000000000000, 00000000:17:00.0, NVIDIA A100-SXM4-80GB, 81920, 79872, 97
1, GPU-11111111-aaaa-bbbb-cccc-000000000001, 00000000:65:00.0, NVIDIA A100-SXM4-80GB, 81920, 4, [N/A]
"""
SMI_APPS = """GPU-8f3c1d2e-aaaa-bbbb-cccc-000000000000, 4242, 78000
GPU-8f3c1d2e-aaaa-bbbb-cccc-000000000000, 4243, [N/A]
garbage line
"""


def test_nvidia_smi_csv_gives_memory_in_bytes_and_unknown_values_as_none():
    rows = parse_smi_gpus(SMI_GPUS)
    assert rows[0] == {"index": 0, "uuid": "GPU-8f3c1d2e-aaaa-bbbb-cccc-000000000000", "bus_id": "0000:17:00.0",
                       "name": "NVIDIA A100-SXM4-80GB", "total_bytes": 80 * GIB, "used_bytes": 79872 * MIB,
                       "util": 97}
    assert rows[1]["util"] is None
    apps = parse_smi_apps(SMI_APPS)
    assert apps == {"GPU-8f3c1d2e-aaaa-bbbb-cccc-000000000000": [GpuProcess(4242, 78000 * MIB), GpuProcess(4243, None)]}
    with pytest.raises(ProbeError, match="unexpected line"):
        parse_smi_gpus("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.")


def test_nvml_structures_as_the_binding_returns_them():
    pynvml = pytest.importorskip("pynvml")
    memory = pynvml.c_nvmlMemory_t(total=80 * GIB, free=2 * GIB, used=78 * GIB)
    utilization = pynvml.c_nvmlUtilization_t(gpu=97, memory=40)
    pci = pynvml.nvmlPciInfo_t()
    pci.busId = b"00000000:17:00.0"
    # nvmlDeviceGetComputeRunningProcesses turns each c_nvmlProcessInfo_t into a friendly object and
    # usedGpuMemory NVML_VALUE_NOT_AVAILABLE into None; the graphics list may repeat a compute process
    compute = [pynvml.nvmlStructToFriendlyObject(pynvml.c_nvmlProcessInfo_t(pid=4242, usedGpuMemory=70 * GIB)),
               SimpleNamespace(pid=4243, usedGpuMemory=None)]
    graphics = [pynvml.nvmlStructToFriendlyObject(pynvml.c_nvmlProcessInfo_t(pid=4242, usedGpuMemory=GIB))]
    gpu = gpu_from_nvml(0, "GPU-8f3c", pci, b"NVIDIA A100-SXM4-80GB", memory, utilization, compute + graphics)
    assert gpu == GpuInfo(0, "GPU-8f3c", "0000:17:00.0", "NVIDIA A100-SXM4-80GB", 80 * GIB, 78 * GIB, 97,
                          (GpuProcess(4242, 70 * GIB), GpuProcess(4243, None)))
    assert gpu.free_bytes == 2 * GIB
    unsupported = gpu_from_nvml(1, b"GPU-1", SimpleNamespace(busId="0000:65:00.0"), "T4", memory, None, [])
    assert unsupported.util is None and unsupported.bus_id == "0000:65:00.0" and unsupported.uuid == "GPU-1"
    not_available = pynvml.c_nvmlProcessInfo_t(pid=7, usedGpuMemory=pynvml.NVML_VALUE_NOT_AVAILABLE_ulonglong.value)
    assert gpu_from_nvml(2, "GPU-2", pci, "T4", memory, None, [not_available]).processes == (GpuProcess(7, None),)


def _gpu(index: int, uuid: str, bus: str) -> GpuInfo:
    return GpuInfo(index, uuid, normalize_bus_id(bus), "Fake", 16 * GIB, 0, 0)


def test_ids_match_by_uuid_or_bus_id_and_indices_by_pci_order_never_by_listing_position():
    # listed out of PCI order, as a probe in a cgroup or with hot-plugged GPUs may list them
    gpus = [_gpu(0, "GPU-bbbb-2", "0000:65:00.0"), _gpu(1, "GPU-aaaa-1", "00000000:17:00.0")]
    assert match_id("0", gpus) == gpus[1] and match_id("1", gpus) == gpus[0]
    assert match_id("GPU-bbbb", gpus) == gpus[0] and match_id("gpu-AAAA-1", gpus) == gpus[1]
    assert match_id("65:00.0", gpus) == gpus[0] and match_id("0000:17:00.0", gpus) == gpus[1]
    assert match_id("GPU-", gpus) is None  # names both: ambiguous
    assert match_id("2", gpus) is None and match_id("MIG-1234", gpus) is None
    assert match_ids(("1", "GPU-bbbb", "7"), gpus) == {"1": gpus[0]}  # one GPU is matched once


def test_a_failing_probe_names_both_methods_and_a_hanging_one_is_cut_off(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    smi = bin_dir / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'NVIDIA-SMI has failed because it could not communicate with the driver' >&2\n"
                   "exit 9\n")
    smi.chmod(0o755)
    env = {"PATH": str(bin_dir)}
    with pytest.raises(ProbeError, match=r"nvidia-smi failed \(exit 9\): NVIDIA-SMI has failed"):
        Prober("smi", timeout=5, environ=env).probe()
    smi.write_text("#!/bin/sh\nsleep 300 &\nwait\n")  # a wedged driver; its child holds the pipe too
    started = time.monotonic()
    with pytest.raises(ProbeError, match="did not answer within 0.3 s"):
        Prober("smi", timeout=0.3, environ=env).probe()
    assert time.monotonic() - started < 60  # returned, with the whole group killed (not a speed check)
    with pytest.raises(ProbeError, match="nvidia-smi not found"):
        Prober("smi", environ={"PATH": str(tmp_path)}).probe()
    with pytest.raises(ValueError, match="auto, nvml or smi"):
        Prober("cuda")


class RecordedNvml:
    """What nvidia-ml-py returned on a two-GPU host (one GPU of another cgroup, utilisation unsupported
    on the other), replayed with the binding's own structures and error classes."""

    def __init__(self, pynvml) -> None:
        self.real = pynvml
        self.NVMLError_NotSupported = pynvml.NVMLError_NotSupported
        self.NVMLError_NoPermission = pynvml.NVMLError_NoPermission
        self.NVMLError_GpuIsLost = pynvml.NVMLError_GpuIsLost

    def nvmlDeviceGetCount(self) -> int:
        return 2

    def nvmlDeviceGetHandleByIndex(self, index: int) -> int:
        if index == 0:
            raise self.real.NVMLError(self.real.NVML_ERROR_NO_PERMISSION)  # the binding raises the subclass
        return index

    def nvmlDeviceGetUtilizationRates(self, handle: int):
        raise self.real.NVMLError(self.real.NVML_ERROR_NOT_SUPPORTED)

    def nvmlDeviceGetComputeRunningProcesses(self, handle: int) -> list:
        return [self.real.nvmlStructToFriendlyObject(self.real.c_nvmlProcessInfo_t(pid=99, usedGpuMemory=GIB))]

    def nvmlDeviceGetGraphicsRunningProcesses(self, handle: int) -> list:
        raise self.real.NVMLError(self.real.NVML_ERROR_NOT_SUPPORTED)

    def nvmlDeviceGetUUID(self, handle: int) -> str:
        return "GPU-1111"

    def nvmlDeviceGetPciInfo(self, handle: int):
        pci = self.real.nvmlPciInfo_t()
        pci.busId = b"00000000:65:00.0"
        return pci

    def nvmlDeviceGetName(self, handle: int) -> str:
        return "Tesla T4"

    def nvmlDeviceGetMemoryInfo(self, handle: int):
        return self.real.c_nvmlMemory_t(total=16 * GIB, free=15 * GIB, used=GIB)


def test_nvml_reading_skips_gpus_it_may_not_open_and_unsupported_values():
    from expq.worker.gpuprobe import _nvml_read

    pynvml = pytest.importorskip("pynvml")
    assert _nvml_read(RecordedNvml(pynvml)) == [
        GpuInfo(1, "GPU-1111", "0000:65:00.0", "Tesla T4", 16 * GIB, GIB, None, (GpuProcess(99, GIB),))]
