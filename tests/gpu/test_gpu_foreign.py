"""Other people's processes: a GPU where a process that is no expq job holds more than --foreign-mem
gets no job (which waits, saying why) until that process leaves; --ignore-foreign turns this off."""
from __future__ import annotations

import getpass
import signal


def test_a_foreign_process_blocks_its_gpu_and_its_departure_lets_the_job_start(box):
    box.fake.set_gpus(1)
    other = box.start_foreign(0, 2048)
    (job,) = box.submit_job(100, "--gpus", "1")
    box.worker("--gpus", "auto")
    reason = box.wait_reason(job, "in use by")
    assert reason == f"GPU 0 in use by another process (pid {other.pid}, {getpass.getuser()})"
    assert box.jobs()[job]["state"] == "pending"
    other.send_signal(signal.SIGKILL)
    other.wait()
    box.wait_states(lambda s: s[job] == "running", "the job starts once the other process left")
    box.release()
    box.wait_states(lambda s: s[job] == "done", "the job is done")


def test_every_gpu_blocked_names_them_all_and_small_or_ignored_processes_do_not_block(box):
    box.fake.set_gpus(3)
    first, second = box.start_foreign(0, 4096), box.start_foreign(1, 8192)
    box.start_foreign(2, 100)  # under the default --foreign-mem of 500 MiB: not in the way
    (big,) = box.submit_job(100, "--gpus", "3")
    (small,) = box.submit_job(100, "--gpus", "1")
    box.worker("--gpus", "auto")
    reason = box.wait_reason(big, "in use by")
    user = getpass.getuser()
    assert reason == f"GPUs 0,1 in use by other processes (pid {first.pid}, {user}; pid {second.pid}, {user})"
    box.wait_states(lambda s: s[small] == "running", "the 1-GPU job runs on GPU 2")
    assert box.jobs()[small]["gpus"] == ["2"]
    box.release()
    box.wait_states(lambda s: s[small] == "done", "the 1-GPU job is done")
    assert box.states()[big] == "pending"


def test_ignore_foreign_starts_jobs_beside_other_processes(box):
    box.fake.set_gpus(1)
    box.start_foreign(0, 4096)
    (job,) = box.submit_job(100, "--gpus", "1")
    box.worker("--gpus", "auto", "--ignore-foreign")
    box.wait_states(lambda s: s[job] == "running", "the job starts despite the other process")
    box.release()
    box.wait_states(lambda s: s[job] == "done", "done")


def test_memory_filling_up_makes_a_gpu_mem_job_wait_and_freed_memory_lets_it_start(box):
    box.fake.set_gpus(2, total_gib=16, used_mib=14 * 1024)  # memory used by nothing listed (another container)
    (job,) = box.submit_job(1024, "--gpu-mem", "4G")
    box.worker("--gpus", "auto", "--jobs-per-gpu", "2")
    assert box.wait_reason(job, "needs 4 GiB") == "needs 4 GiB on 1 GPU (most free: GPU 0, 2 GiB)"
    box.fake.set_used(1, 10 * 1024)
    box.wait_states(lambda s: s[job] == "running", "the job starts where memory was freed")
    assert box.jobs()[job]["gpus"] == ["1"]


def test_cuda_visible_devices_are_matched_by_pci_order_or_uuid_never_by_listing_position(box):
    box.fake.set_gpus(3, reversed_bus=True)  # nvidia-smi's GPU 2 is the first in PCI order: CUDA's device 0
    other = box.start_foreign(2, 4096)
    (job,) = box.submit_job(100, "--gpus", "1")
    box.worker("--gpus", "auto", env={"CUDA_VISIBLE_DEVICES": "0"})  # as SLURM sets it
    assert box.wait_reason(job, "in use by") == f"GPU 0 in use by another process (pid {other.pid}, {getpass.getuser()})"
    box.close()  # that worker goes; one given the free GPU by its UUID runs the job at once
    (free,) = box.submit("--gpus", "1", "--", "true")
    box.release()
    box.worker("--gpus", "auto", "--drain", env={"CUDA_VISIBLE_DEVICES": box.fake.uuid(0)})
    box.wait_states(lambda s: s[free] == "done", "the job on the free GPU is done")
    assert box.jobs()[free]["gpus"] == [box.fake.uuid(0)]
    assert box.states()[job] == "done"  # it came first in the queue and went to the same free GPU
