"""Jobs with --gpu-mem share GPUs by memory, up to --jobs-per-gpu each, and never past free memory,
also when two workers serve the same GPUs; checked from the jobs' own records of their GPUs and times."""
from __future__ import annotations

from collections import defaultdict


def overlaps(spans: list[dict]) -> dict[str, list[list[dict]]]:
    """Per GPU, the groups of jobs that ran on it at one moment (taken at each job's start)."""
    groups: dict[str, list[list[dict]]] = defaultdict(list)
    for span in spans:
        for gpu in span["gpus"]:
            groups[gpu].append([s for s in spans if gpu in s["gpus"] and s["start"] <= span["start"] < s["end"]])
    return groups


def test_gpu_mem_jobs_pack_up_to_jobs_per_gpu_and_never_past_free_memory(box):
    box.fake.set_gpus(2, total_gib=16)
    ids = box.submit_job(6 * 1024, "--gpu-mem", "6G", "--sweep", "i=range(6)")
    box.worker("--gpus", "auto", "--jobs-per-gpu", "3")
    # two fit on each 16 GiB GPU (a third would need 18 GiB): four run, the others say why they wait
    box.wait_states(lambda s: sum(v == "running" for v in s.values()) == 4, "four jobs running")
    reason = box.wait_reason(ids[-1], "needs 6 GiB on 1 GPU (most free: GPU ")
    assert reason.endswith(", 4 GiB)")
    running = [job for job in box.jobs().values() if job["state"] == "running"]
    assert sorted(g for job in running for g in job["gpus"]) == ["0", "0", "1", "1"]
    box.release()
    box.wait_states(lambda s: all(v == "done" for v in s.values()), "all done")
    for gpu, groups in overlaps(box.spans()).items():
        assert max(len(g) for g in groups) == 2, gpu
        assert all(sum(s["mib"] for s in g) <= 16 * 1024 for g in groups)


def test_jobs_per_gpu_bounds_sharing_even_with_memory_left(box):
    box.fake.set_gpus(1, total_gib=16)
    ids = box.submit_job(1024, "--gpu-mem", "1G", "--sweep", "i=range(3)")
    box.worker("--gpus", "auto", "--jobs-per-gpu", "2", "--slots", "3")  # a slot left: --jobs-per-gpu bounds
    box.wait_states(lambda s: sum(v == "running" for v in s.values()) == 2, "two jobs running")
    assert box.wait_reason(ids[2], "runs") == "GPU 0 runs 2 jobs (--jobs-per-gpu 2)"
    assert box.jobs()[ids[2]]["state"] == "pending"
    box.release()
    box.wait_states(lambda s: all(v == "done" for v in s.values()), "all done")
    assert max(len(g) for g in overlaps(box.spans())["0"]) <= 2


def test_two_workers_on_the_same_four_gpus_never_over_commit(box):
    box.fake.set_gpus(4, total_gib=16)
    box.release()  # each job holds its memory for 0.3 s, then ends
    box.submit_job(6 * 1024, "--gpu-mem", "6G", "--sweep", "i=range(24)", hold=0.3)
    workers = [box.worker("--gpus", "auto", "--jobs-per-gpu", "3", "--drain") for _ in range(2)]
    for index, worker in enumerate(workers):
        assert worker.wait(120) == 0, box.log(index)
    spans = box.spans()
    assert len(spans) == 24 and {s["job"] for s in spans} == set(range(1, 25))
    groups = overlaps(spans)
    for gpu, at_once in groups.items():
        assert all(len(g) <= 2 and sum(s["mib"] for s in g) <= 16 * 1024 for g in at_once), (gpu, at_once)
    assert any(len(g) == 2 for at_once in groups.values() for g in at_once)  # they did share
    assert {s["job"] for s in spans} == set(range(1, 25))


def test_a_multi_gpu_job_needs_its_memory_free_on_each_gpu(box):
    box.fake.set_gpus(3, total_gib=16)
    box.fake.set_used(1, 12 * 1024)  # 4 GiB free on GPU 1
    (pair,) = box.submit_job(1024, "--gpus", "2", "--gpu-mem", "6G")
    (three,) = box.submit_job(1024, "--gpus", "3", "--gpu-mem", "6G")
    box.worker("--gpus", "auto", "--jobs-per-gpu", "2")
    box.wait_states(lambda s: s[pair] == "running", "the 2-GPU job runs")
    assert box.jobs()[pair]["gpus"] == ["0", "2"]
    assert box.wait_reason(three, "needs") == "needs 6 GiB on 3 GPUs (most free: GPU 0, 10 GiB)"
