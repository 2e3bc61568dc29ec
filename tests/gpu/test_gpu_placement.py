"""The placement decision on recorded GPU views, and the per-GPU locks that two workers share."""
from __future__ import annotations

from pathlib import Path

from expq.worker.gpuprobe import GpuInfo
from expq.worker.gpus import GpuLocks, Holders, Seat
from expq.worker.placement import Foreign, GpuPolicy, GpuView, choose

GIB = 1 << 30
NOBODY = Holders(False, ())


def view(gpu: str, free_gib: float | None, holders: Holders = NOBODY, blocking: tuple[Foreign, ...] = (),
         outstanding_gib: float = 0) -> GpuView:
    info = None if free_gib is None else GpuInfo(int(gpu), f"GPU-{gpu}", f"0000:{gpu}:00.0", "Fake", 80 * GIB,
                                                 int((80 - free_gib) * GIB), 50)
    return GpuView(gpu, info, holders, blocking, int(outstanding_gib * GIB))


def seats(count: int) -> Holders:
    return Holders(False, tuple(Seat(GIB, 0.0, n, "/root") for n in range(count)))


SHARE2 = GpuPolicy(jobs_per_gpu=2)


def test_whole_gpu_jobs_take_gpus_nobody_holds():
    views = [view("0", 80, seats(1)), view("1", 80), view("2", None), view("3", 80, Holders(True, ()))]
    assert choose(views, 2, None, GpuPolicy()) == (["1", "2"], "")
    assert choose(views, 3, None, GpuPolicy()) == (None, "")  # held by expq jobs: it waits its turn


def test_shared_jobs_spread_then_pack_within_jobs_per_gpu_and_free_memory():
    views = [view("0", 30, seats(1)), view("1", 20), view("2", 60, seats(2))]
    assert choose(views, 1, 12 * GIB, SHARE2) == (["1"], "")  # fewest holders first, then most free
    assert choose(views, 2, 12 * GIB, SHARE2) == (["1", "0"], "")
    assert choose(views, 1, 25 * GIB, SHARE2) == (["0"], "")  # GPU 1 lacks memory, GPU 2 has K holders
    # unknown memory: a --gpu-mem job takes a GPU only alone
    assert choose([view("0", None, seats(1)), view("1", None)], 1, GIB, SHARE2) == (["1"], "")


def test_gpus_full_of_shared_jobs_say_so():
    assert choose([view("0", 60, seats(2))], 1, GIB, SHARE2) == (None, "GPU 0 runs 2 jobs (--jobs-per-gpu 2)")
    views = [view("0", 60, seats(2)), view("1", 60, seats(2)), view("2", 60, Holders(True, ()))]
    assert choose(views, 1, GIB, SHARE2) == (None, "GPUs 0,1 each run 2 jobs (--jobs-per-gpu 2)")
    assert choose([view("0", 60, seats(1))], 1, GIB, GpuPolicy()) == (None, "GPU 0 runs 1 job (--jobs-per-gpu 1)")


def test_memory_reason_counts_promises_not_yet_allocated():
    views = [view("0", 10, seats(1), outstanding_gib=4), view("1", 8.0), view("2", 7.1)]
    assert choose(views, 1, 12 * GIB, SHARE2) == (None, "needs 12 GiB on 1 GPU (most free: GPU 1, 8 GiB)")
    assert choose(views, 2, 7 * GIB, SHARE2) == (["1", "2"], "")
    assert choose(views, 2, 8 * GIB, SHARE2) == (None, "needs 8 GiB on 2 GPUs (most free: GPU 1, 8 GiB)")


def test_an_allocation_listed_before_the_used_memory_shows_it_is_not_freed_twice():
    # the process list (read second) shows two jobs' 6 GiB each; the used memory (read first) did not yet
    stale = GpuView("0", GpuInfo(0, "GPU-0", "0000:17:00.0", "Fake", 16 * GIB, 0, 0), seats(2), (), 0, 12 * GIB)
    assert stale.free == 4 * GIB
    assert choose([stale], 1, 6 * GIB, GpuPolicy(jobs_per_gpu=3))[0] is None


def test_foreign_processes_block_their_gpus_and_are_named():
    bob, eve = Foreign(4242, "bob", 70 * GIB), Foreign(77, "eve", None)
    views = [view("0", 10, blocking=(bob,)), view("1", 40, blocking=(bob, eve)), view("2", 80, seats(1))]
    assert choose(views, 1, None, GpuPolicy()) == (None, "")  # GPU 2 is busy with an expq job: its turn comes
    assert choose(views, 2, None, GpuPolicy()) == (
        None, "GPUs 0,1 in use by other processes (pid 4242, bob; pid 77, eve)")
    assert choose(views[:1], 1, None, GpuPolicy()) == (None, "GPU 0 in use by another process (pid 4242, bob)")
    assert choose(views, 1, 30 * GIB, SHARE2) == (["2"], "")
    assert choose(views, 2, 30 * GIB, SHARE2) == (None, "GPUs 0,1 in use by other processes "
                                                        "(pid 4242, bob; pid 77, eve)")
    assert choose(views, 4, None, GpuPolicy()) == (None, "needs 4 GPUs (this worker has 3)")


def test_two_workers_locks_count_each_others_holders_and_read_their_promises(tmp_path: Path):
    first, second = GpuLocks(("0", "1"), tmp_path / "locks"), GpuLocks(("GPU-x", "1"), tmp_path / "locks")
    second.keys = {"GPU-x": "0"}  # the same GPU named by its UUID: the same lock files
    with first.placement():
        taken = first.take_seats(["0"], Seat(12 * GIB, 1000.0, 7, "/root/a"))
    assert taken is not None
    with second.placement():
        holders = second.holders("GPU-x")
    assert holders == Holders(False, (Seat(12 * GIB, 1000.0, 7, "/root/a"),)) and holders.count == 1
    got = second.acquire(1)  # a whole GPU: not GPU 0, which has a seat taken
    assert got is not None and [gpu for gpu, _ in got] == ["1"]
    assert second.acquire(1) is None
    first.release(taken)
    assert first.holders("0") == NOBODY
    again = second.acquire(1)
    assert again is not None and [gpu for gpu, _ in again] == ["GPU-x"]
    assert first.holders("0") == Holders(True, ())
    with first.placement():
        assert first.take_seats(["1"], Seat(GIB, 0.0, 8, "/root/a")) is None  # whole-locked by the other worker
