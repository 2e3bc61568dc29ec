"""``expq gpus`` lists each GPU with its memory, utilisation, expq jobs and other people's processes;
``status`` and ``show`` print the reasons a job waits."""
from __future__ import annotations

import getpass
import json


def test_expq_gpus_lists_jobs_and_other_processes_per_gpu(box):
    box.fake.set_gpus(2, total_gib=16, util=42)
    other = box.start_foreign(1, 2048)
    (job,) = box.submit_job(3 * 1024, "--gpu-mem", "4G")
    box.worker("--gpus", "0")
    box.wait_until(lambda: json.loads(box.expq("gpus", "--json").stdout)["gpus"][0]["jobs"], timeout=30,
                   message=lambda: box.expq("gpus").stdout)
    data = json.loads(box.expq("gpus", "--json").stdout)
    first, second = data["gpus"]
    assert data["problem"] == "" and first["uuid"] == box.fake.uuid(0) and first["util"] == 42
    assert first["jobs"] == [{"job": job, "root": str(box.root), "this_root": True, "mem_bytes": 3 << 30}]
    assert first["others"] == [] and second["jobs"] == []
    assert second["others"] == [{"pid": other.pid, "user": getpass.getuser(), "mem_bytes": 2 << 30}]
    assert second["mem_used_bytes"] == 2 << 30 and second["mem_total_bytes"] == 16 << 30
    lines = box.expq("gpus").stdout.splitlines()
    assert lines[0].split() == ["GPU", "NAME", "MEMORY", "UTIL", "EXPQ", "JOBS", "OTHER", "PROCESSES"]
    assert lines[1].split() == ["0", "Fake", "A100", "3", "GiB", "/", "16", "GiB", "42%", str(job), "(3", "GiB)", "-"]
    assert lines[2].endswith(f"pid {other.pid} {getpass.getuser()} (2 GiB)")


def test_expq_gpus_without_a_driver_says_why_and_succeeds(box):
    box.fake.fail("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.")
    done = box.expq("gpus")
    assert done.returncode == 0
    assert done.stdout == ("no GPU found on this host (nvidia-smi failed (exit 9): NVIDIA-SMI has failed because it "
                           "couldn't communicate with the NVIDIA driver.)\n")


def test_status_and_show_print_why_jobs_wait(box):
    box.fake.set_gpus(1, total_gib=16, used_mib=12 * 1024)
    other = box.start_foreign(0, 1024)
    (big,) = box.submit("--gpus", "2", "--", "true")
    (mem,) = box.submit("--gpu-mem", "6G", "--", "true")
    (whole,) = box.submit("--gpus", "1", "--", "true")
    box.worker("--gpus", "auto", "--jobs-per-gpu", "2")
    box.wait_reason(whole, "in use by")
    table = box.expq("status").stdout
    assert "needs 2 GPUs (largest worker has 1)" in table
    assert "GPU 0 in use by another process" in table
    shown = box.expq("show", str(mem)).stdout + box.expq("show", str(whole)).stdout
    assert "needs 6 GiB on 1 GPU (most free: GPU 0, 3 GiB)" in shown
    assert f"GPU 0 in use by another process (pid {other.pid}, {getpass.getuser()})" in shown
    assert box.jobs()[big]["reason"] == "needs 2 GPUs (largest worker has 1)"


def test_a_gpu_sample_counts_only_for_the_attempt_it_was_taken_in(tmp_path):
    from expq.launcher.run_files import read_gpu_usage
    from expq.queue.paths import RunPaths

    run = RunPaths(tmp_path)
    assert read_gpu_usage(run, 0.0) == (None, None)
    (tmp_path / "gpu_usage.json").write_text(json.dumps({"gpu_mem_bytes": 5 << 30, "gpu_util": 80,
                                                         "peak_gpu_mem_bytes": 6 << 30, "sampled_at": 100.0}))
    assert read_gpu_usage(run, 50.0) == (5 << 30, 80)
    assert read_gpu_usage(run, 150.0) == (None, None)  # a retry started after it: not its use
    (tmp_path / "gpu_usage.json").write_text('{"gpu_mem_bytes": "5G", "gpu_util": true, "sampled_at": 100}')
    assert read_gpu_usage(run, 50.0) == (None, None)


def test_expq_gpus_shows_jobs_that_hold_a_gpu_before_they_allocate(box):
    box.fake.set_gpus(2)
    idle = ["--", "sh", "-c", f"while [ ! -e {box.release_file} ]; do sleep 0.05; done"]  # no GPU memory (yet)
    (whole,) = box.submit("--gpus", "1", *idle)
    (shared,) = box.submit("--gpu-mem", "1G", *idle)
    box.worker("--gpus", "auto")
    box.wait_states(lambda s: s[whole] == "running" and s[shared] == "running", "both run")
    gpus = json.loads(box.expq("gpus", "--json").stdout)["gpus"]
    held = {(gpu["id"], job["job"], job["mem_bytes"]) for gpu in gpus for job in gpu["jobs"]}
    placed = {(box.jobs()[i]["gpus"][0], i, None) for i in (whole, shared)}
    assert held == placed
    assert f"{whole} (no memory yet)" in box.expq("gpus").stdout
