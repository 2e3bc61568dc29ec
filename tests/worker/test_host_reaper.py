"""One reaper per host and queue: the holder of a real ``flock``; the others step in only when the
holder looks frozen, and take over once it is gone."""
from __future__ import annotations

from expq.worker.host_reaper import HostReaper


def _never(worker_id: str) -> bool:
    return False


def test_one_worker_per_host_holds_the_reaper_lock_and_the_next_takes_over_when_it_ends(tmp_path):
    locks, root = tmp_path / "locks", tmp_path / "root"
    root.mkdir()
    first = HostReaper(locks, "node1", root, "node1-11-aaaaaa")
    second = HostReaper(locks, "node1", root, "node1-12-bbbbbb")
    assert first.is_mine(_never)
    assert not second.is_mine(_never)
    assert first.path.read_text() == "node1-11-aaaaaa"
    first.close()  # a worker's death frees its lock the same way
    assert second.is_mine(_never)
    assert second.path.read_text() == "node1-12-bbbbbb"
    second.close()


def test_the_others_step_in_while_the_holder_is_frozen(tmp_path):
    (tmp_path / "root").mkdir()
    holder = HostReaper(tmp_path / "locks", "node1", tmp_path / "root", "node1-11-aaaaaa")
    other = HostReaper(tmp_path / "locks", "node1", tmp_path / "root", "node1-12-bbbbbb")
    assert holder.is_mine(_never)
    asked: list[str] = []
    assert other.is_mine(lambda worker_id: asked.append(worker_id) or True)
    assert asked == ["node1-11-aaaaaa"]
    holder.close()


def test_hosts_and_queues_have_reapers_of_their_own(tmp_path):
    locks = tmp_path / "locks"
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    reapers = [HostReaper(locks, "node1", tmp_path / "a", "w1"), HostReaper(locks, "node2", tmp_path / "a", "w2"),
               HostReaper(locks, "node1", tmp_path / "b", "w3")]
    assert all(reaper.is_mine(_never) for reaper in reapers)
    for reaper in reapers:
        reaper.close()


def test_a_queue_named_by_two_paths_has_one_reaper(tmp_path):
    (tmp_path / "root").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "root")
    by_path = HostReaper(tmp_path / "locks", "node1", tmp_path / "root", "w1")
    by_link = HostReaper(tmp_path / "locks", "node1", tmp_path / "link", "w2")
    assert by_path.is_mine(_never)
    assert not by_link.is_mine(_never)
    by_path.close()


def test_without_a_usable_lock_folder_every_worker_recovers(tmp_path):
    planted = tmp_path / "locks"
    planted.mkdir(mode=0o777)
    planted.chmod(0o777)  # writable by others: refused as a lock folder
    assert HostReaper(planted, "node1", tmp_path / "root", "w1").is_mine(_never)
    assert HostReaper(planted, "node1", tmp_path / "root", "w2").is_mine(_never)
    assert not list(planted.iterdir())


def test_a_scan_reads_a_lease_once_and_sees_it_removed(tmp_path):
    from expq.queue.attempts import Attempt
    from expq.queue.lease import Lease, write_lease
    from expq.queue.store import JobQueue
    from expq.worker.loop import Worker, WorkerOptions

    queue = JobQueue(tmp_path / "root").create()
    worker = Worker(queue, WorkerOptions(lock_dir=tmp_path / "locks"))
    lease = Lease(7, Attempt(1, "node1", "node1-11-aaaaaa", 1000.0), 11, 5.0, "abcd0001")
    write_lease(queue.paths, lease)
    assert worker._lease_of(7, "abcd0001") == lease
    queue.paths.lease_file(7, "abcd0001").write_text("changed under a cached lease: not read again")
    assert worker._lease_of(7, "abcd0001") == lease
    # a reaper killed right after its commit leaves the claim without a lease: it must look so
    queue.paths.lease_file(7, "abcd0001").unlink()
    assert worker._lease_of(7, "abcd0001") is None
