"""``expq gpus``: the GPUs of this host, what each holds, and whose it is (expq jobs or other people).

The probe is the worker's (``expq.worker.gpuprobe``, NVML else ``nvidia-smi``), imported when the
command runs. A host without a driver has no GPU to list: that is an answer (exit 0), not an error.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from expq.worker.gpuprobe import GpuInfo

__all__ = ["register", "run", "describe", "gpus_text"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "gpus", help="GPUs of this host: memory, utilisation, expq jobs and other processes on each",
        description="Per GPU of this host (numbered as jobs see them: PCI bus order): memory used/total, "
                    "utilisation, the expq jobs whose processes hold memory there and other processes.")
    p.add_argument("--json", action="store_true", help="as JSON")
    p.add_argument("--probe", choices=("auto", "nvml", "smi"), default=None,
                   help="read through NVML or nvidia-smi (default: $EXPQ_GPU_PROBE, else NVML, else nvidia-smi)")
    p.set_defaults(run=run)


def describe(gpus: list[GpuInfo], root: str, lock_dir: Path | None = None) -> list[dict[str, Any]]:
    """One record per GPU, in PCI bus order. A process is an expq job's when its environment names one;
    the GPU locks in ``lock_dir`` add the jobs that hold a GPU but no memory yet (``mem_bytes`` None)."""
    from expq.worker.gpus import GpuLocks
    from expq.worker.placement import Owners

    owners = Owners()
    locks = GpuLocks((), lock_dir) if lock_dir is not None and lock_dir.is_dir() else None
    records = []
    for position, gpu in enumerate(sorted(gpus, key=lambda g: g.bus_id)):
        jobs: dict[tuple[str, int], int | None] = {}
        # a worker names a GPU's locks by its UUID when its probe matched it, else by the id it was given
        for holders in [locks.holders(key) for key in (gpu.uuid, str(position))] if locks is not None else []:
            for seat in (*holders.seats, *((holders.owner,) if holders.owner else ())):
                if seat.job:
                    jobs.setdefault((seat.root, seat.job), None)
        others = []
        for proc in gpu.processes:
            owner, user = owners.of(proc.pid)
            if owner is None:
                others.append({"pid": proc.pid, "user": user, "mem_bytes": proc.used_bytes})
            else:
                jobs[owner] = (jobs.get(owner) or 0) + (proc.used_bytes or 0)
        records.append({
            "id": str(position), "index": gpu.index, "uuid": gpu.uuid, "bus_id": gpu.bus_id, "name": gpu.name,
            "mem_used_bytes": gpu.used_bytes, "mem_total_bytes": gpu.total_bytes, "util": gpu.util,
            "jobs": [{"job": job, "root": job_root, "this_root": job_root == root, "mem_bytes": held}
                     for (job_root, job), held in sorted(jobs.items())],
            "others": others,
        })
    return records


def gpus_text(records: list[dict[str, Any]]) -> str:
    from expq.queue.spec import format_size

    def size(value: int | None, unknown: str = "?") -> str:
        return unknown if value is None else format_size(value)

    rows = [("GPU", "NAME", "MEMORY", "UTIL", "EXPQ JOBS", "OTHER PROCESSES")]
    for rec in records:
        jobs = ", ".join(f"{j['job']}{'' if j['this_root'] else ' (' + j['root'] + ')'} ({size(j['mem_bytes'], 'no memory yet')})"
                         for j in rec["jobs"]) or "-"
        others = ", ".join(f"pid {o['pid']} {o['user']} ({size(o['mem_bytes'])})" for o in rec["others"]) or "-"
        rows.append((rec["id"], rec["name"], f"{size(rec['mem_used_bytes'])} / {size(rec['mem_total_bytes'])}",
                     "-" if rec["util"] is None else f"{rec['util']}%", jobs, others))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "".join("  ".join([*(cell.ljust(w) for cell, w in zip(row, widths)), row[-1]]).rstrip() + "\n"
                   for row in rows)


def run(args: argparse.Namespace) -> int:
    from expq.worker.gpuprobe import ProbeError, Prober

    try:
        gpus = Prober(args.probe).probe()
        problem = ""
    except ProbeError as exc:
        gpus, problem = [], str(exc)
    from expq.worker.gpus import default_lock_dir

    records = describe(gpus, str(args.root), default_lock_dir())
    if args.json:
        sys.stdout.write(json.dumps({"version": 1, "gpus": records, "problem": problem}, indent=2) + "\n")
    elif problem:
        sys.stdout.write(f"no GPU found on this host ({problem})\n")
    else:
        sys.stdout.write(gpus_text(records))
    sys.stdout.flush()
    return 0
