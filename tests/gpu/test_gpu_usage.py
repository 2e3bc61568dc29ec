"""What running jobs use (status), their peak (result.json), a CUDA out-of-memory reason, and a probe
that fails, hangs or has no driver costing nothing but a log line."""
from __future__ import annotations

import json
import os
from pathlib import Path

GIB = 1 << 30


def test_status_shows_gpu_memory_and_utilisation_of_running_jobs_and_result_keeps_the_peak(box):
    box.fake.set_gpus(2, util=97)
    (job,) = box.submit_job(3 * 1024, "--gpu-mem", "4G")
    box.worker("--gpus", "auto")
    box.wait_until(lambda: box.jobs()[job]["gpu_mem_bytes"] == 3 * GIB, timeout=30,
                   message=lambda: f"status says {box.jobs()[job]}")
    record = box.jobs()[job]
    assert record["gpu_util"] == 97 and record["gpu_mem"] == 4 * GIB and record["state"] == "running"
    box.release()
    box.wait_states(lambda s: s[job] == "done", "done")
    result = json.loads((Path(record["run_dir"]) / "result.json").read_text())
    assert result["peak_gpu_mem_bytes"] == 3 * GIB
    assert box.jobs()[job]["peak_gpu_mem_bytes"] == 3 * GIB


def test_a_job_dying_of_cuda_out_of_memory_says_so_with_a_hint_to_raise_gpu_mem(box):
    box.fake.set_gpus(1)
    (shared,) = box.submit_job(100, "--gpu-mem", "1G", oom=True)
    (whole,) = box.submit_job(100, "--gpus", "1", oom=True)
    box.worker("--gpus", "auto")
    box.wait_states(lambda s: s[shared] == "failed" and s[whole] == "failed", "both fail")
    assert box.jobs()[shared]["reason"] == ("CUDA out of memory (exit code 1); it asked for --gpu-mem 1 GiB: "
                                            "submit it with a larger --gpu-mem")
    assert box.jobs()[whole]["reason"] == "CUDA out of memory (exit code 1)"


def test_a_failing_driver_costs_a_log_line_and_gpu_jobs_still_run_whole(box):
    box.fake.set_gpus(2)
    box.fake.fail("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.")
    ids = box.submit_job(100, "--gpu-mem", "1G", "--sweep", "i=range(2)")
    box.worker("--gpus", "0,1", "--jobs-per-gpu", "4")
    box.wait_states(lambda s: all(s[i] == "running" for i in ids), "both run, one per GPU")
    assert sorted(g for i in ids for g in box.jobs()[i]["gpus"]) == ["0", "1"]  # memory unknown: alone
    assert box.log().count("GPU probe failed: nvidia-smi failed (exit 9): NVIDIA-SMI has failed") == 1
    box.release()
    box.wait_states(lambda s: all(s[i] == "done" for i in ids), "done")


def test_a_hanging_probe_is_cut_off_by_its_timeout_and_jobs_go_on(box):
    box.fake.set_gpus(1)
    box.fake.hang()
    (job,) = box.submit_job(100, "--gpus", "1")
    box.worker("--gpus", "0", "--probe-timeout", "0.5")
    box.wait_states(lambda s: s[job] == "running", "the job runs though the probe hangs")
    assert "nvidia-smi did not answer within 0.5 s" in box.log()
    box.release()
    box.wait_states(lambda s: s[job] == "done", "done")


def test_without_a_driver_gpus_auto_means_no_gpu_and_the_log_says_why(box):
    box.fake.fail("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.")
    (cpu,) = box.submit("--", "true")
    (gpu,) = box.submit("--gpus", "1", "--", "true")
    worker = box.worker("--gpus", "auto", "--drain")
    assert worker.wait(60) == 0, box.log()
    assert box.states() == {cpu: "done", gpu: "pending"}
    assert "no GPU found (" in box.log() and "running without GPUs" in box.log()
    assert box.jobs()[gpu]["reason"] == "no live worker"


def test_the_probe_runs_only_while_something_waits_for_a_gpu_or_a_gpu_job_runs(box):
    box.fake.set_gpus(1)
    worker = box.worker("--gpus", "auto")
    box.wait_until(lambda: "serving" in box.log(), message=lambda: box.log())
    started = box.fake.calls()
    heartbeats = box.root / "queue" / "workers"
    seen: set[int] = set()

    def beats() -> bool:  # the worker's file is touched on each heartbeat: wait for several
        seen.update(e.stat().st_mtime_ns for e in os.scandir(heartbeats) if e.name.endswith(".json"))
        return len(seen) >= 5

    box.wait_until(beats, message="five heartbeats")
    assert box.fake.calls() == started and worker.poll() is None  # idle: no probe at all
    (job,) = box.submit_job(100, "--gpus", "1")
    box.wait_states(lambda s: s[job] == "running", "running")
    box.wait_until(lambda: box.fake.calls() > started, message="a running GPU job is sampled")


def test_a_worker_stalled_in_its_placement_turn_delays_gpu_jobs_only(box):
    import fcntl

    box.fake.set_gpus(1)
    locks = box.tmp / "gpu-locks"
    locks.mkdir(mode=0o700)
    stalled = os.open(locks / "placement.lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(stalled, fcntl.LOCK_EX)  # what a worker stopped inside its placement turn leaves behind
    try:
        (gpu,) = box.submit_job(100, "--gpus", "1")
        (cpu,) = box.submit("--", "true")
        box.release()
        box.worker("--gpus", "auto", "--slots", "2")
        box.wait_states(lambda s: s[cpu] == "done", "the CPU job runs meanwhile")
        box.wait_until(lambda: "held by a stalled worker" in box.log(), message=lambda: box.log())
        assert box.states()[gpu] == "pending"
    finally:
        os.close(stalled)
    box.wait_states(lambda s: s[gpu] == "done", "the GPU job runs once the turn is free")


def test_a_probe_hanging_while_a_job_waits_does_not_stall_the_worker(box):
    box.fake.set_gpus(2)
    (first,) = box.submit_job(100, "--gpus", "1")
    box.worker("--gpus", "auto", "--slots", "3", "--probe-timeout", "120")
    box.wait_states(lambda s: s[first] == "running", "a GPU job runs (and is sampled)")
    box.fake.hang()
    calls = box.fake.calls()
    box.wait_until(lambda: box.fake.calls() > calls, message="a probe that hangs")  # the sampler's, in the background
    (second,) = box.submit_job(100, "--gpus", "1")
    (cpu,) = box.submit("--", "true")
    box.wait_states(lambda s: s[cpu] == "done", "the CPU job runs while the probe hangs")
    assert box.states()[second] == "pending"  # no GPU job starts on GPUs nobody has looked at
    assert "did not answer" not in box.log()  # the worker did not wait the probe out
    box.fake.heal()
    box.release()
    box.wait_states(lambda s: s[second] == "done" and s[first] == "done", "both GPU jobs done")
