"""One reaper per host and queue: the holder of a real ``flock``; the others step in only when the
holder looks frozen, and take over once it is gone."""
from __future__ import annotations

from expq.worker.host_reaper import HostReaper


def _never(worker_id: str) -> bool:
    return False


def test_one_worker_per_host_holds_the_reaper_lock_and_the_next_takes_over_when_it_ends(tmp_path):
    locks, root = tmp_path / "locks", tmp_path / "root"
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
    holder = HostReaper(tmp_path / "locks", "node1", tmp_path / "root", "node1-11-aaaaaa")
    other = HostReaper(tmp_path / "locks", "node1", tmp_path / "root", "node1-12-bbbbbb")
    assert holder.is_mine(_never)
    asked: list[str] = []
    assert other.is_mine(lambda worker_id: asked.append(worker_id) or True)
    assert asked == ["node1-11-aaaaaa"]
    holder.close()


def test_hosts_and_queues_have_reapers_of_their_own(tmp_path):
    locks = tmp_path / "locks"
    reapers = [HostReaper(locks, "node1", tmp_path / "a", "w1"), HostReaper(locks, "node2", tmp_path / "a", "w2"),
               HostReaper(locks, "node1", tmp_path / "b", "w3")]
    assert all(reaper.is_mine(_never) for reaper in reapers)
    for reaper in reapers:
        reaper.close()


def test_without_a_usable_lock_folder_every_worker_recovers(tmp_path):
    planted = tmp_path / "locks"
    planted.mkdir(mode=0o777)
    planted.chmod(0o777)  # writable by others: refused as a lock folder
    assert HostReaper(planted, "node1", tmp_path / "root", "w1").is_mine(_never)
    assert HostReaper(planted, "node1", tmp_path / "root", "w2").is_mine(_never)
    assert not list(planted.iterdir())
