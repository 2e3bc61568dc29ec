"""A job for the GPU tests: "allocates" memory on the GPUs in CUDA_VISIBLE_DEVICES by listing itself in
the fake nvidia-smi's state ($FAKE_SMI_STATE), records its start and end (with its GPUs) in a file,
and holds until a release file exists (and, with --hold=S, for S seconds at least).
Usage: gpu_job.py RECORDS MIB RELEASE_FILE [--oom] [--hold=S]."""
from __future__ import annotations

import json
import os
import sys
import time


def record(path: str, event: str, **extra: object) -> None:
    line = json.dumps({"job": int(os.environ["EXPQ_JOB_ID"]), "event": event, "t": time.time(),
                       "gpus": os.environ.get("CUDA_VISIBLE_DEVICES", ""), **extra}) + "\n"
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.write(fd, line.encode())
    os.close(fd)


def main(records: str, mib: int, release: str, oom: bool, hold: float) -> int:
    state = os.environ["FAKE_SMI_STATE"]
    record(records, "start", mib=mib)
    if oom:
        sys.stderr.write("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB\n")
        return 1
    with open(os.path.join(state, "gpus.json")) as handle:
        by_bus = sorted(json.load(handle), key=lambda g: g["bus"])
    # CUDA's numbering under CUDA_DEVICE_ORDER=PCI_BUS_ID (which expq sets), or a UUID as given
    lines = "".join(f"{g if g.startswith('GPU-') else by_bus[int(g)]['uuid']} {os.getpid()} {mib}\n"
                    for g in os.environ["CUDA_VISIBLE_DEVICES"].split(",") if g)
    app = os.path.join(state, "apps", f"job-{os.environ['EXPQ_JOB_ID']}-{os.getpid()}")
    with open(app, "w") as handle:
        handle.write(lines)
    held_until = time.monotonic() + hold
    deadline = time.monotonic() + 120  # never outlives a broken test for long
    while (not os.path.exists(release) or time.monotonic() < held_until) and time.monotonic() < deadline:
        time.sleep(0.02)  # a job's own work, not a test's wait
    record(records, "end", mib=mib)
    os.unlink(app)
    return 0


if __name__ == "__main__":
    flags = sys.argv[4:]
    hold = next((float(f.split("=", 1)[1]) for f in flags if f.startswith("--hold=")), 0.0)
    sys.exit(main(sys.argv[1], int(sys.argv[2]), sys.argv[3], "--oom" in flags, hold))
