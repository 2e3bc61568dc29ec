"""A lab server has other users: what a job holds (tokens, passwords) is readable by its owner only,
whatever the umask; nothing planted in the tree by someone else is followed or trusted; a queue
folder that becomes unsafe while a worker runs stops it claiming until fixed."""
from __future__ import annotations

import grp
import os
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from expq.queue.states import State

NOBODY = 65534
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="acting as a second user needs root")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask0() -> Iterator[None]:
    old = os.umask(0)
    yield
    os.umask(old)


def test_secrets_are_owner_only_whatever_the_umask(cluster, umask0):
    job_id = cluster.submit("--env", "API_TOKEN=s3cret", "--set", "password=hunter2", "--experiment", "private",
                            "--", "sh", "-c", "echo $API_TOKEN")[0]
    cluster.drain("--gpus", "none")
    assert cluster.state(job_id) == "done"
    run = cluster.run_dir(job_id)
    files = [run / name for name in ("job.json", "config.yaml", "run.env", "stdout.log", "stderr.log", "result.json")]
    files += [cluster.queue.paths.job_file(State.DONE, job_id), cluster.queue.paths.id_counter]
    assert {str(f): _mode(f) for f in files} == {str(f): 0o600 for f in files}
    folders = [cluster.root, cluster.queue.paths.queue, cluster.queue.paths.experiments, run.parent, run]
    assert {str(d): _mode(d) for d in folders} == {str(d): 0o700 for d in folders}


@needs_root
def test_another_user_cannot_read_a_jobs_secrets(make_cluster):
    shared = Path(tempfile.mkdtemp(prefix="expq-privacy-"))
    try:
        shared.chmod(0o755)  # other users may look in here, as in a home or project folder
        cluster = make_cluster(shared / "root")
        job_id = cluster.submit("--env", "API_TOKEN=s3cret", "--", "true")[0]
        cluster.drain("--gpus", "none")
        run_env = cluster.run_dir(job_id) / "run.env"
        assert "s3cret" in run_env.read_text()
        peek = subprocess.run(["cat", str(run_env)], capture_output=True, text=True, user=NOBODY, group=NOBODY,
                              extra_groups=[])
        assert peek.returncode != 0 and "s3cret" not in peek.stdout
        listing = subprocess.run(["ls", str(cluster.queue.paths.queue)], capture_output=True, user=NOBODY,
                                 group=NOBODY, extra_groups=[])
        assert listing.returncode != 0
    finally:
        subprocess.run(["rm", "-rf", str(shared)], check=True)


def test_a_run_directory_planted_as_a_symlink_is_refused_not_followed(cluster):
    job_id = cluster.submit("--experiment", "e", "--name", "n", "--", "true")[0]
    elsewhere = cluster.tmp / "elsewhere"
    elsewhere.mkdir()
    run_dir = cluster.root / "experiments" / "e" / f"{job_id}-n"
    run_dir.parent.mkdir(mode=0o700)
    run_dir.symlink_to(elsewhere)
    cluster.drain("--gpus", "none")
    assert cluster.state(job_id) == "failed"
    assert "was not made by expq (a symbolic link)" in cluster.worker_log(0)
    assert not list(elsewhere.iterdir())  # nothing was written through the link, not even a result


@needs_root
def test_a_run_directory_made_by_another_user_is_refused_and_its_symlinks_not_written(cluster):
    job_id = cluster.submit("--experiment", "e", "--name", "n", "--", "true")[0]
    target = cluster.tmp / "root-owned"
    target.write_text("precious\n")
    run_dir = cluster.root / "experiments" / "e" / f"{job_id}-n"
    run_dir.parent.mkdir(mode=0o700)
    run_dir.mkdir(mode=0o777)
    (run_dir / "run.env").symlink_to(target)
    os.chown(run_dir, NOBODY, NOBODY)
    cluster.drain("--gpus", "none")
    assert cluster.state(job_id) == "failed"
    assert target.read_text() == "precious\n"


@needs_root
def test_a_cancel_request_written_by_another_user_is_ignored(cluster, wait_until):
    started = cluster.tmp / "started"
    job_id = cluster.submit("--", "sh", "-c", f"touch {started}; sleep 3")[0]
    worker = cluster.worker("--gpus", "none")
    wait_until(started.exists, timeout=20)
    forged = cluster.queue.paths.cancel_file(job_id)
    forged.touch()
    os.chown(forged, NOBODY, NOBODY)
    cluster.wait_state(job_id, "done")
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0


def test_a_queue_folder_opened_to_others_stops_claiming_until_fixed(cluster, wait_until):
    first = cluster.submit("--", "true")[0]
    worker = cluster.worker("--gpus", "none")
    cluster.wait_state(first, "done")
    cluster.queue.paths.leases.chmod(0o777)
    wait_until(lambda: "not claiming jobs" in cluster.worker_log(0), timeout=20)
    job_id = cluster.submit("--", "true")[0]
    assert cluster.state(job_id) == "pending"
    assert "writable by other users" in cluster.worker_log(0)
    cluster.queue.paths.leases.chmod(0o700)
    cluster.wait_state(job_id, "done")
    assert "claiming jobs again" in cluster.worker_log(0)
    worker.send_signal(signal.SIGTERM)
    assert worker.wait(20) == 0


@pytest.fixture
def colleague() -> Iterator[tuple[str, int]]:
    """A group and a second user in it (created for the test, removed after): (group name, user id)."""
    if os.geteuid() != 0:
        pytest.skip("creating a group and a user needs root")
    group, user = "expqshare", "expqpeer"
    subprocess.run(["userdel", user], capture_output=True)
    subprocess.run(["groupdel", group], capture_output=True)
    if subprocess.run(["groupadd", group], capture_output=True).returncode != 0:
        pytest.skip("groupadd is not available here")
    subprocess.run(["useradd", "--no-create-home", "-g", group, user], check=True, capture_output=True)
    try:
        yield group, int(subprocess.run(["id", "-u", user], capture_output=True, text=True, check=True).stdout)
    finally:
        subprocess.run(["userdel", user], capture_output=True)
        subprocess.run(["groupdel", group], capture_output=True)


def test_a_root_shared_with_a_group_is_shared_with_that_group_only(make_cluster, colleague):
    group, peer = colleague
    shared = Path(tempfile.mkdtemp(prefix="expq-shared-"))
    try:
        shared.chmod(0o755)
        cluster = make_cluster(shared / "root")
        subprocess.run([sys.executable, "-m", "expq", "--root", str(cluster.root), "init", "--shared-group", group],
                       check=True, capture_output=True)  # not in-process: sharing changes the process's modes
        queue_dir = cluster.queue.paths.queue
        assert _mode(queue_dir) == 0o2770 and queue_dir.stat().st_gid == grp.getgrnam(group).gr_gid
        mine = cluster.submit("--env", "API_TOKEN=s3cret", "--", "true")[0]
        # a spec a colleague queued (owned by them, the group's, group-writable) is run, not refused
        theirs = cluster.submit("--", "true")[0]
        spec = cluster.queue.paths.state_dir(State.PENDING) / cluster.queue.paths.file_name(State.PENDING, theirs)
        os.chown(spec, peer, -1)
        cluster.drain("--gpus", "none")
        assert cluster.state(mine) == "done" and cluster.state(theirs) == "done"
        run_env = cluster.run_dir(mine) / "run.env"
        assert _mode(run_env) == 0o660
        gid = grp.getgrnam(group).gr_gid
        peek = subprocess.run(["cat", str(run_env)], capture_output=True, text=True, user=peer, group=gid,
                              extra_groups=[gid])
        assert peek.returncode == 0 and "s3cret" in peek.stdout  # the group may read its jobs
        stranger = subprocess.run(["cat", str(run_env)], capture_output=True, text=True, user=NOBODY, group=NOBODY,
                                  extra_groups=[])
        assert stranger.returncode != 0 and "s3cret" not in stranger.stdout
        cluster.queue.paths.state_dir(State.PENDING).chmod(0o2777)  # writable by others: still refused
        refused = cluster.worker("--gpus", "none", "--drain")
        assert refused.wait(30) == 2 and "writable by other users" in cluster.worker_log(1)
    finally:
        subprocess.run(["rm", "-rf", str(shared)], check=True)
