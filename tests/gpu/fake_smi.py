"""A stand-in for ``nvidia-smi`` (the sanctioned stand-in for the driver), reading a state folder that
tests change while workers run: ``gpus.json`` (the GPUs and the memory used by nobody listed),
``apps/*`` (lines ``UUID PID MIB``: processes holding memory; dead pids are dropped as the driver
does), ``fail`` (its text is the error, exit 9) and ``hang`` (no answer while it exists). Each call is logged in
``calls.log``. Usage: fake_smi.py STATE_DIR nvidia-smi-arguments..."""
from __future__ import annotations

import json
import os
import sys
import time


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def main(state: str, args: list[str]) -> int:
    with open(os.path.join(state, "calls.log"), "a") as log:
        log.write(" ".join(args) + "\n")
    deadline = time.monotonic() + 600
    while os.path.exists(os.path.join(state, "hang")) and time.monotonic() < deadline:
        time.sleep(0.05)  # a wedged driver, until the test heals it (then it answers)
    if os.path.exists(os.path.join(state, "fail")):
        with open(os.path.join(state, "fail")) as handle:
            sys.stderr.write(handle.read())
        return 9
    with open(os.path.join(state, "gpus.json")) as handle:
        gpus = json.load(handle)
    apps = []
    folder = os.path.join(state, "apps")
    for name in sorted(os.listdir(folder)):
        try:
            with open(os.path.join(folder, name)) as handle:
                lines = handle.read().splitlines()
        except FileNotFoundError:
            continue
        for line in lines:
            parts = line.split()
            if len(parts) == 3 and alive(int(parts[1])):
                apps.append((parts[0], int(parts[1]), parts[2]))
    query = next(a for a in args if a.startswith("--query"))
    fields = query.split("=", 1)[1].split(",")
    if query.startswith("--query-gpu="):
        for index, gpu in enumerate(gpus):
            used = gpu["used_mib"] + sum(int(mib) for uuid, _, mib in apps if uuid == gpu["uuid"] and mib.isdigit())
            values = {"index": index, "uuid": gpu["uuid"], "pci.bus_id": gpu["bus"], "name": gpu["name"],
                      "memory.total": gpu["total_mib"], "memory.used": used,
                      "memory.free": gpu["total_mib"] - used,
                      "utilization.gpu": gpu.get("util", "[N/A]")}
            print(", ".join(str(values[f]) for f in fields))
    else:
        for uuid, pid, mib in apps:
            print(", ".join(str({"gpu_uuid": uuid, "pid": pid, "used_memory": mib}[f]) for f in fields))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
