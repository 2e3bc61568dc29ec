"""Which probed GPU a worker's GPU id names: by UUID or PCI bus id, an index only through the PCI order.

A worker's ids come from ``--gpus`` or ``CUDA_VISIBLE_DEVICES`` (as SLURM sets it). NVML's and
``nvidia-smi``'s index is a position in their own listing, which need not be the one CUDA uses, and
under SLURM's device cgroups a listing may hold only some GPUs. A UUID (``GPU-...``, or a unique
prefix, as CUDA accepts) or a PCI bus id names one GPU everywhere. An index is read as CUDA reads it
in a job's child, which gets ``CUDA_DEVICE_ORDER=PCI_BUS_ID``: the n-th GPU this process can open,
in PCI bus order. An id that matches nothing (a MIG instance, a GPU the probe cannot see) is left out:
its memory and processes are unknown, and jobs use it only whole, as without a probe.
"""
from __future__ import annotations

from collections.abc import Sequence

from expq.worker.gpuprobe import GpuInfo, normalize_bus_id

__all__ = ["match_ids", "match_id"]


def match_id(gpu_id: str, gpus: Sequence[GpuInfo]) -> GpuInfo | None:
    """The probed GPU ``gpu_id`` names, or None when it names none (or more than one)."""
    text = gpu_id.strip()
    low = text.lower()
    if low.startswith("gpu-"):
        hits = [g for g in gpus if g.uuid.lower().startswith(low)]
    elif ":" in text:
        bus = normalize_bus_id(text)
        hits = [g for g in gpus if g.bus_id == bus]
    elif text.isdigit():
        in_bus_order = sorted(gpus, key=lambda g: g.bus_id)
        position = int(text)
        hits = [in_bus_order[position]] if position < len(in_bus_order) else []
    else:
        hits = []
    return hits[0] if len(hits) == 1 else None


def match_ids(ids: Sequence[str], gpus: Sequence[GpuInfo]) -> dict[str, GpuInfo]:
    """Each id that names one probed GPU, with it; two ids naming one GPU keep only the first."""
    found: dict[str, GpuInfo] = {}
    for gpu_id in ids:
        gpu = match_id(gpu_id, gpus)
        if gpu is not None and all(other.uuid != gpu.uuid for other in found.values()):
            found[gpu_id] = gpu
    return found
