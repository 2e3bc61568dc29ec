"""``expq tensorboard`` starts a real TensorBoard; its HTTP API serves the runs' scalars."""
from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import sys
import urllib.parse
import urllib.request

import numpy as np
import psutil

import expq


def _get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _post(url: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _kill(proc: subprocess.Popen[bytes]) -> None:
    """After a failure: the expq process and its TensorBoard (in a session of its own) die with the test."""
    if proc.poll() is None:
        try:
            children = psutil.Process(proc.pid).children(recursive=True)
        except psutil.NoSuchProcess:
            children = []
        proc.kill()
        proc.wait()
        for child in children:
            with contextlib.suppress(psutil.NoSuchProcess):  # it may have died with its parent
                child.kill()


def test_expq_tensorboard_serves_every_run_and_stops_on_sigterm(sweep_root, tmp_path, wait_until):
    stdout = tmp_path / "stdout"
    with open(stdout, "wb") as out, open(tmp_path / "stderr", "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "expq", "--root", str(sweep_root), "tensorboard", "sweep",
                                 "--port", "0", "--logdir", str(tmp_path / "tb"), "--reload", "1"],
                                stdout=out, stderr=err)
    try:
        url = wait_until(lambda: stdout.read_text().strip(), timeout=60,
                         message=lambda: f"no URL; stderr: {(tmp_path / 'stderr').read_text()[-500:]}")
        assert url.startswith("http://127.0.0.1:") and url.endswith("/")
        children = psutil.Process(proc.pid).children()
        assert len(children) == 1 and "tensorboard" in " ".join(children[0].cmdline())
        runs = expq.open(sweep_root / "experiments" / "sweep").all_runs()
        assert sorted(_get(url + "data/runs")) == sorted(run.name for run in runs)
        for run in runs:
            stored = run.load_scalar("loss")
            query = urllib.parse.urlencode({"run": run.name, "tag": "loss"})
            served = wait_until(lambda q=query: _get(f"{url}data/plugin/scalars/scalars?{q}"), timeout=30)
            assert [step for _, step, _ in served] == stored["step"].tolist()
            with np.errstate(over="ignore"):
                expected = stored["value"].astype(np.float32)
            values = np.array([float(v) for _, _, v in served], dtype=np.float32)
            assert np.array_equal(values, expected, equal_nan=True)
        groups = _post(url + "data/plugin/hparams/session_groups", {
            "experimentName": "", "allowedStatuses": ["STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING",
                                                      "STATUS_UNKNOWN"],
            "colParams": [], "startIndex": 0, "sliceSize": 100})["sessionGroups"]
        by_name = {group["name"]: group for group in groups}
        assert sorted(by_name) == sorted(run.name for run in runs)
        for run in runs:  # the HParams tab: each run's config, and its last loss as the result
            group = by_name[run.name]
            assert group["hparams"]["lr"] == run.config["lr"]
            assert group["sessions"][0]["status"] == "STATUS_SUCCESS"
            (loss,) = [m["value"] for m in group["metricValues"] if m["name"]["tag"] == "loss"]
            assert np.float32(float(loss)) == np.float32(run.load_scalar("loss")["value"][-1])
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        assert not children[0].is_running() or children[0].status() == psutil.STATUS_ZOMBIE
    finally:
        _kill(proc)


def test_an_unknown_experiment_starts_nothing(sweep_root, tmp_path, cli):
    done = cli(sweep_root, "tensorboard", "nope", "--logdir", str(tmp_path / "tb"), check=False)
    assert done.returncode == 2
    assert done.stderr == "expq: error: no such experiment or run: nope\n" and done.stdout == ""
    assert not (tmp_path / "tb").exists()


def test_points_logged_while_it_serves_reach_tensorboard(tmp_path, wait_until):
    """The default logdir is the experiment's .tensorboard/, re-exported every --reload seconds."""
    root = tmp_path / "root"
    exp = expq.Experiment("growing", root=root, sources=False, capture_output=False)
    for step in range(3):
        exp.log_scalar("loss", float(step))
    exp.flush()
    stdout = tmp_path / "stdout"
    with open(stdout, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "expq", "--root", str(root), "tensorboard", "growing",
                                 "--port", "0", "--reload", "1"], stdout=out, stderr=subprocess.DEVNULL)
    try:
        url = wait_until(lambda: stdout.read_text().strip(), timeout=60, message="no URL printed")
        query = urllib.parse.urlencode({"run": exp.path.name, "tag": "loss"})
        wait_until(lambda: len(_get(f"{url}data/plugin/scalars/scalars?{query}")) == 3, timeout=30)
        for step in range(3, 5):
            exp.log_scalar("loss", float(step))
        exp.close()
        served = wait_until(lambda: [p[2] for p in _get(f"{url}data/plugin/scalars/scalars?{query}")] == [
            0.0, 1.0, 2.0, 3.0, 4.0], timeout=30, message="the new points never reached TensorBoard")
        assert served
        assert (exp.collection_dir / ".tensorboard" / exp.path.name).is_dir()
        proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
        assert proc.wait(30) == 0
    finally:
        _kill(proc)
