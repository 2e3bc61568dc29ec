"""Fixtures for the GPU tests: a fake ``nvidia-smi`` first on PATH whose GPUs, processes and failures a
test changes while real worker processes run, and helpers to submit, run and watch jobs."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from expq.queue.store import JobQueue

HERE = Path(__file__).parent
FAST = ["--poll", "0.05", "--heartbeat", "0.2", "--grace", "2"]
GIB_MIB = 1024


class FakeGpus:
    """The state the fake ``nvidia-smi`` reads; every method changes what its next call prints."""

    def __init__(self, folder: Path) -> None:
        self.state = folder / "smi-state"
        (self.state / "apps").mkdir(parents=True)
        self.bin = folder / "bin"
        self.bin.mkdir()
        smi = self.bin / "nvidia-smi"
        smi.write_text(f"#!/bin/sh\nexec {sys.executable} {HERE / 'fake_smi.py'} {self.state} \"$@\"\n")
        smi.chmod(0o755)
        self.set_gpus(1)

    def set_gpus(self, count: int, total_gib: int = 16, used_mib: int = 0, util: int = 0,
                 reversed_bus: bool = False) -> None:
        """``count`` GPUs; ``reversed_bus``: listed against PCI order (index 0 has the highest bus id)."""
        bus = [count - 1 - i if reversed_bus else i for i in range(count)]
        gpus = [{"uuid": f"GPU-{i:04d}aaaa-0000", "bus": f"00000000:{0x17 + bus[i]:02X}:00.0", "name": "Fake A100",
                 "total_mib": total_gib * GIB_MIB, "used_mib": used_mib, "util": util} for i in range(count)]
        self._write(gpus)

    def gpus(self) -> list[dict]:
        return json.loads((self.state / "gpus.json").read_text())

    def set_used(self, index: int, used_mib: int) -> None:
        gpus = self.gpus()
        gpus[index]["used_mib"] = used_mib
        self._write(gpus)

    def _write(self, gpus: list[dict]) -> None:
        tmp = self.state / "gpus.json.tmp"
        tmp.write_text(json.dumps(gpus))
        tmp.replace(self.state / "gpus.json")

    def uuid(self, index: int) -> str:
        return str(self.gpus()[index]["uuid"])

    def hold(self, pid: int, index: int, mib: int) -> None:
        """List ``pid`` as holding ``mib`` MiB on GPU ``index`` (until it dies)."""
        (self.state / "apps" / f"proc-{pid}-{index}").write_text(f"{self.uuid(index)} {pid} {mib}\n")

    def fail(self, message: str) -> None:
        (self.state / "fail").write_text(message + "\n")

    def hang(self) -> None:
        (self.state / "hang").touch()

    def heal(self) -> None:
        for name in ("fail", "hang"):
            (self.state / name).unlink(missing_ok=True)

    def calls(self) -> int:
        try:
            return len((self.state / "calls.log").read_text().splitlines())
        except FileNotFoundError:
            return 0

    @property
    def env(self) -> dict[str, str]:
        return {"PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}", "EXPQ_GPU_PROBE": "smi",
                "FAKE_SMI_STATE": str(self.state)}


class GpuBox:
    """One expq root served by workers that see the fake GPUs."""

    def __init__(self, tmp: Path, wait_until: Callable[..., object]) -> None:
        self.tmp = tmp
        self.root = tmp / "root"
        self.fake = FakeGpus(tmp)
        self.wait_until = wait_until
        self.workers: list[subprocess.Popen[bytes]] = []
        self.records = tmp / "records.jsonl"
        self.release_file = tmp / "release"
        self.foreign: list[subprocess.Popen[bytes]] = []

    def env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        clean = {k: v for k, v in os.environ.items() if k != "CUDA_VISIBLE_DEVICES" and not k.startswith("EXPQ_")}
        return {**clean, **self.fake.env, "EXPQ_GPU_LOCK_DIR": str(self.tmp / "gpu-locks"), **(extra or {})}

    def expq(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "expq", "--root", str(self.root), *args], capture_output=True,
                              text=True, check=check, env=self.env({"COLUMNS": "200"}))  # every status column whole

    def submit(self, *args: str) -> list[int]:
        return [int(line) for line in self.expq("submit", *args).stdout.split()]

    def submit_job(self, mib: int, *args: str, oom: bool = False, hold: float = 0.0) -> list[int]:
        """Jobs running ``gpu_job.py``: each holds ``mib`` MiB on its GPUs until ``release()`` (and for
        ``hold`` seconds at least)."""
        return self.submit(*args, "--", sys.executable, str(HERE / "gpu_job.py"), str(self.records), str(mib),
                           str(self.release_file), *(["--oom"] if oom else []), f"--hold={hold}")

    def release(self) -> None:
        self.release_file.touch()

    def worker(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
        log = open(self.tmp / f"worker-{len(self.workers)}.log", "ab")
        proc = subprocess.Popen([sys.executable, "-m", "expq", "--root", str(self.root), "worker", *FAST, *args],
                                stdout=log, stderr=log, env=self.env(env))
        log.close()
        self.workers.append(proc)
        return proc

    def log(self, index: int = 0) -> str:
        return (self.tmp / f"worker-{index}.log").read_text()

    def jobs(self) -> dict[int, dict]:
        out = self.expq("status", "--json").stdout
        return {job["id"]: job for job in json.loads(out)["jobs"]}

    def states(self) -> dict[int, str]:
        return {job_id: job["state"] for job_id, job in self.jobs().items()}

    def wait_states(self, wanted: Callable[[dict[int, str]], bool], what: str, timeout: float = 30) -> None:
        self.wait_until(lambda: wanted(self.states()), timeout=timeout,
                        message=lambda: f"{what}; states {self.states()}; log:\n{self.log() if self.workers else ''}")

    def wait_reason(self, job_id: int, text: str, timeout: float = 30) -> str:
        self.wait_until(lambda: text in self.jobs()[job_id]["reason"], timeout=timeout,
                        message=lambda: f"job {job_id} reason is {self.jobs()[job_id]['reason']!r}, "
                                        f"not {text!r}; log:\n{self.log() if self.workers else ''}")
        return str(self.jobs()[job_id]["reason"])

    def start_foreign(self, index: int, mib: int) -> subprocess.Popen[bytes]:
        """A process started outside expq that holds ``mib`` MiB on GPU ``index``."""
        proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"],
                                env={k: v for k, v in os.environ.items() if not k.startswith("EXPQ_")})
        self.foreign.append(proc)
        self.fake.hold(proc.pid, index, mib)
        return proc

    def spans(self) -> list[dict]:
        """Each finished job's (start, end, GPUs, MiB) from the jobs' own records."""
        events = [json.loads(line) for line in self.records.read_text().splitlines()]
        starts = {e["job"]: e for e in events if e["event"] == "start"}
        return [{"job": e["job"], "start": starts[e["job"]]["t"], "end": e["t"], "gpus": e["gpus"].split(","),
                 "mib": e["mib"]} for e in events if e["event"] == "end"]

    def close(self) -> None:
        for proc in self.workers + self.foreign:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()


@pytest.fixture
def box(tmp_path: Path, wait_until: Callable[..., object]) -> Iterator[GpuBox]:
    made = GpuBox(tmp_path, wait_until)
    JobQueue(made.root).create()
    yield made
    made.release()
    made.fake.heal()  # a hanging fake nvidia-smi answers and ends
    made.close()
