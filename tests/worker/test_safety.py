"""Bad specs, foreign specs, insecure queues and a full disk cost a job at most, never the worker."""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys

import pytest

from expq.queue.states import State


def test_malformed_spec_is_moved_aside_with_a_reason(cluster):
    good = cluster.submit("--", "true")[0]
    pending = cluster.queue.paths.state_dir(State.PENDING)
    (pending / "00000-99999998.json").write_text("{not json")
    (pending / "00000-99999999.json").write_text('{"version": 1, "id": 99999999, "surprise": 1}')
    cluster.drain("--gpus", "none")
    assert cluster.state(good) == "done"
    rejected = cluster.queue.paths.rejected
    assert "not JSON" in (rejected / "00000-99999998.reason").read_text()
    assert "unknown keys surprise" in (rejected / "00000-99999999.reason").read_text()
    assert not list(pending.rglob("*.json"))


def test_worker_refuses_a_queue_others_can_write(cluster):
    cluster.submit("--", "true")
    pending = cluster.queue.paths.state_dir(State.PENDING)
    pending.chmod(0o777)
    proc = cluster.worker("--gpus", "none", "--drain")
    assert proc.wait(30) == 2
    log = cluster.worker_log(0)
    assert f"expq: error: refusing {pending}: writable by other users (mode 777)" in log
    assert f"fix: chmod go-w '{pending}'" in log


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_spec_owned_by_another_user_is_skipped(cluster):
    job_id = cluster.submit("--", "true")[0]
    spec = next(cluster.queue.paths.state_dir(State.PENDING).rglob("*.json"))
    os.chown(spec, 65534, 65534)
    cluster.drain("--gpus", "none")
    assert cluster.state(job_id) is None
    reason = (cluster.queue.paths.rejected / spec.name).with_suffix(".reason").read_text()
    assert "owned by uid 65534" in reason and "resubmit it as that user" in reason


@pytest.fixture
def tiny_disk(tmp_path):
    """A 4 MiB tmpfs, so a job can fill the disk its results go to (needs root)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def test_full_disk_pauses_claiming_keeps_every_job_and_resumes(make_cluster, tiny_disk, wait_until):
    small = make_cluster(tiny_disk / "root")
    filler = tiny_disk / "filler"
    hog = small.submit("--", "sh", "-c", f"head -c 8000000 /dev/zero > {filler}; exit 0")[0]
    starved = small.submit("--", "true")[0]
    worker = small.worker("--gpus", "none", "--slots", "1")
    wait_until(lambda: "not claiming jobs: disk full" in small.worker_log(0), timeout=30,
               message=lambda: small.worker_log(0))
    # the hog's end could not be written: it stays running (with its lease), the other job stays pending
    assert small.state(hog) == "running" and small.state(starved) == "pending"
    assert worker.poll() is None
    filler.unlink()
    small.wait_state(hog, "done")
    small.wait_state(starved, "done")
    assert "claiming jobs again" in small.worker_log(0)
    assert small.result(starved)["attempts"] == 1  # no retry was spent on the way
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0


def test_a_sweep_submitted_onto_a_full_disk_queues_nothing(make_cluster, tiny_disk):
    small = make_cluster(tiny_disk / "root")
    small.submit("--", "true")  # the queue exists
    filler = tiny_disk / "filler"
    subprocess.run(["dd", "if=/dev/zero", f"of={filler}", "bs=4096"], capture_output=True)  # until full
    free = os.statvfs(tiny_disk).f_bavail * os.statvfs(tiny_disk).f_frsize
    os.truncate(filler, os.path.getsize(filler) - (200_000 - free))  # leave about 200 kB
    pending = small.queue.paths.state_dir(State.PENDING)
    before = sorted(p.name for p in pending.iterdir())
    out = subprocess.run([sys.executable, "-m", "expq", "--root", str(small.root), "submit", "--sweep",
                          "i=range(5000)", "--", "echo", "{i}"], capture_output=True, text=True)
    assert out.returncode == 1 and out.stdout == "" and "No space left on device" in out.stderr
    assert sorted(p.name for p in pending.iterdir()) == before  # none of the sweep is visible
    assert not list(small.queue.paths.incoming.iterdir())  # and nothing of it is left behind
