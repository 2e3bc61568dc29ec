"""``expq ui`` over HTTP, without a browser: the URL and token, bad URLs, paths that leave a run
directory, torn files, a port in use, a live metric read incrementally. A real server on 127.0.0.1."""
from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ui_support import REPO, Server

pytestmark = pytest.mark.timeout(60)


def _get(url: str) -> tuple[int, bytes, str]:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status, response.read(), response.headers.get("content-type", "")
    except urllib.error.HTTPError as error:
        return error.code, error.read(), error.headers.get("content-type", "")


def _json(url: str) -> tuple[int, Any]:
    status, body, _ = _get(url)
    return status, json.loads(body)


@pytest.fixture(scope="module")
def crafted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root written by hand: a good run, a run with torn or foreign files, a symlink leading out."""
    root = tmp_path_factory.mktemp("crafted") / "root"
    good = root / "experiments" / "exp" / "good"
    (good / "metrics").mkdir(parents=True)
    (good / "files").mkdir()
    (good / "run.json").write_text(json.dumps({"state": "done", "config": {"lr": 0.1}, "result": {"acc": 0.9},
                                                "tags": ["baseline"]}))
    (good / "metrics" / "loss.csv").write_text("step,value,time\n0,1.0,1.0\n1,0.5,2.0\n2,nan,3.0\n")
    (good / "files" / "note.txt").write_text("hello")
    (good / "files" / "escape.txt").symlink_to(root.parent / "secret.txt")
    (root.parent / "secret.txt").write_text("not yours")
    (good / "stdout.log").write_text("line 1\n")
    nested = good / "runs" / "inner"
    nested.mkdir(parents=True)
    (nested / "run.json").write_text(json.dumps({"state": "done", "config": {"lr": 0.1, "depth": 3}}))
    torn = root / "experiments" / "exp" / "torn"
    (torn / "metrics").mkdir(parents=True)
    (torn / "job.json").write_text('{"id": 3, "experi')
    (torn / "result.json").write_text('{"state": "do')
    (torn / "config.yaml").write_text("lr: [0.1\n  - : : bad")
    (torn / "metrics" / "loss.csv").write_text("step,value,time\n0,2.0,1.0\ngarbage line\n1,1.5,2.0\n2,1.")
    (torn / "attempts").mkdir()
    (torn / "attempts" / "1.json").write_text('{"number": 1, "ho')
    return root


@pytest.fixture(scope="module")
def crafted_server(crafted: Path) -> Iterator[Server]:
    made = Server(crafted)
    yield made
    if made.proc.poll() is None:
        made.stop()


def test_url_holds_a_token_and_the_server_stops_on_ctrl_c(crafted: Path) -> None:
    server = Server(crafted)
    assert len(server.token) >= 32
    assert _json(f"{server.base}/api/info") == (200, {"root": str(crafted), "read_only": False})
    status, page, kind = _get(f"{server.base}/")
    assert status == 200 and kind.startswith("text/html") and b"/static/app.js" in page
    code, err = server.stop()
    assert code == 0 and "Traceback" not in err


def test_page_scripts_come_from_the_package(crafted_server: Server) -> None:
    status, bundle, kind = _get(f"{crafted_server.base}/static/plotly.min.js")
    import plotly

    shipped = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    assert status == 200 and "javascript" in kind and bundle == shipped.read_bytes()
    assert _get(f"{crafted_server.base}/static/app.js")[0] == 200
    assert _get(f"{crafted_server.base}/static/../conftest.py")[0] == 404


@pytest.mark.parametrize("path", ["/experiments/nope", "/experiments/exp/runs/nope", "/experiments/exp/runs/good/x",
                                  "/jobs/99", "/experiments/..", "/nothing/here"])
def test_unknown_things_in_a_url_give_a_404_page(crafted_server: Server, path: str) -> None:
    status, body, kind = _get(crafted_server.base + path)
    assert status == 404 and kind.startswith("text/html") and b"404" in body


@pytest.mark.parametrize("path", ["/api/experiments/nope/runs", "/api/run?experiment=exp&run=nope",
                                  "/api/run?experiment=exp&run=..%2Fexp", "/api/jobs/99", "/api/nothing"])
def test_unknown_things_in_the_api_give_a_404(crafted_server: Server, path: str) -> None:
    status, body = _json(crafted_server.base + path)
    assert status == 404 and body["error"]


@pytest.mark.parametrize("path", ["../torn/result.json", "/etc/passwd", "files/../../torn/job.json",
                                  "files/escape.txt", "files%2F..%2F..%2Fgood%2Frun.json"])
def test_paths_that_leave_the_run_directory_are_refused(crafted_server: Server, path: str) -> None:
    status, body = _json(f"{crafted_server.base}/api/run/file?experiment=exp&run=good&path={path}")
    assert status == 403 and body["error"].startswith("refused")


def test_files_download_and_logs_read(crafted_server: Server) -> None:
    status, body, kind = _get(f"{crafted_server.base}/api/run/file?experiment=exp&run=good&path=files/note.txt")
    assert (status, body) == (200, b"hello") and kind.startswith("text/plain")
    with urllib.request.urlopen(f"{crafted_server.base}/api/run/file?experiment=exp&run=good&path=files/note.txt",
                                timeout=10) as response:  # a run's file never runs script in the page's origin
        assert response.headers["Content-Security-Policy"].startswith("sandbox")
        assert response.headers["X-Content-Type-Options"] == "nosniff"
    status, log = _json(f"{crafted_server.base}/api/run/log?experiment=exp&run=good&name=stdout.log")
    assert status == 200 and log["text"] == "line 1\n" and log["offset"] == 7
    status, log = _json(f"{crafted_server.base}/api/run/log?experiment=exp&run=good&name=../../secret.txt")
    assert status == 403


def test_torn_and_foreign_files_read_as_missing(crafted_server: Server, wait_until: Callable[..., Any]) -> None:
    def complete() -> Any:  # a loaded machine may need a second poll to read every metric (partial answers)
        status, table = _json(f"{crafted_server.base}/api/experiments/exp/runs")
        assert status == 200
        return None if table["partial"] else table

    table = wait_until(complete, timeout=20, interval=0.2, message="the runs table stayed partial")
    rows = {row["run"]: row for row in table["rows"]}
    assert set(rows) == {"good", "good/inner", "torn"}
    assert rows["torn"]["state"] == "running"  # a job.json without a readable result: not finished
    assert "config.lr" not in rows["torn"]  # config.yaml is not YAML: no config shown
    assert rows["torn"]["loss.last"] == 1.5 and rows["torn"]["loss.best"] == 1.5  # garbage and torn lines skipped
    assert rows["good"]["loss.last"] is None and rows["good"]["loss.best"] == 0.5  # NaN is null in JSON
    assert rows["good"]["tags"] == ["baseline"] and table["columns"][-2:] == ["result", "tags"]
    assert table["config_keys"] == ["config.lr", "config.depth"] and table["constant"] == {}
    status, run = _json(f"{crafted_server.base}/api/run?experiment=exp&run=torn")
    assert status == 200 and run["result"] is None and run["job"] is None and run["attempts"] == []
    status, run = _json(f"{crafted_server.base}/api/run?experiment=exp&run=good")
    assert run["returned"] == {"acc": 0.9} and run["runs"] == ["good/inner"] and run["files"] == [
        "files/escape.txt", "files/note.txt"]
    status, page, _ = _get(f"{crafted_server.base}/experiments/exp/runs/torn")
    assert status == 200


def test_a_root_without_a_queue_has_an_empty_queue_view(crafted_server: Server) -> None:
    status, queue = _json(f"{crafted_server.base}/api/queue")
    assert status == 200 and queue["exists"] is False and queue["running"] == []


def test_a_growing_metric_is_read_from_where_the_last_poll_stopped(crafted_server: Server, crafted: Path) -> None:
    metric = crafted / "experiments" / "exp" / "good" / "metrics" / "grow.csv"
    metric.write_text("step,value,time\n" + "".join(f"{i},{i / 10},{i}.0\n" for i in range(100)))
    url = f"{crafted_server.base}/api/experiments/exp/series?metric=grow&run=good"
    (line,) = _json(url)[1]["lines"]
    assert line["points"] == 100 and line["y"][-1] == 9.9
    with open(metric, "a") as handle:
        handle.write("100,10.0,100.0\n101,10.1,1")  # the last line is still being written
    (line,) = _json(url)[1]["lines"]
    assert line["points"] == 101 and line["x"][-1] == 100
    with open(metric, "a") as handle:
        handle.write("01.0\n")
    (line,) = _json(url)[1]["lines"]
    assert line["points"] == 102 and line["y"][-1] == 10.1


def test_a_port_in_use_is_one_line_and_exit_1(crafted: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([sys.executable, "-m", "expq", "--root", str(crafted), "ui", "--port", str(port)],
                              capture_output=True, text=True, timeout=30, cwd=REPO)
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr == (f"expq: error: cannot listen on 127.0.0.1:{port}: the port is in use "
                           "(pick another with --port, or --port 0)\n")


def test_bad_input_exits_2_and_writes_nothing(tmp_path: Path) -> None:
    for args, message in ((["--port", "70000"], "is not a port"), ([], "no such expq root")):
        done = subprocess.run([sys.executable, "-m", "expq", "--root", str(tmp_path / "none"), "ui", *args],
                              capture_output=True, text=True, timeout=30, cwd=REPO)
        assert done.returncode == 2 and message in done.stderr and done.stderr.count("\n") == 1
    assert not (tmp_path / "none").exists()


def test_listening_beyond_this_machine_warns(crafted: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "expq", "--root", str(crafted), "ui", "--host", "0.0.0.0",
                             "--port", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        assert proc.stdout is not None and proc.stdout.readline().startswith("http://127.0.0.1:")
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=15)
    assert "expq: warning: listening on 0.0.0.0" in err


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.lstat().st_mtime_ns, p.lstat().st_size) for p in root.rglob("*")}


def test_reading_every_view_writes_nothing(crafted_server: Server, crafted: Path) -> None:
    before = _tree(crafted)
    for path in ("/", "/experiments", "/experiments/exp", "/experiments/exp/runs/good", "/api/queue",
                 "/api/experiments", "/api/experiments/exp/runs", "/api/run?experiment=exp&run=torn",
                 "/api/experiments/exp/series?metric=loss&run=good&run=torn",
                 "/api/run/log?experiment=exp&run=good&name=stdout.log",
                 "/api/run/file?experiment=exp&run=good&path=files/note.txt"):
        assert _get(crafted_server.base + path)[0] == 200, path
    assert _tree(crafted) == before


def test_other_host_names_are_refused_on_loopback(crafted_server: Server) -> None:
    request = urllib.request.Request(f"{crafted_server.base}/api/info", headers={"Host": "attacker.example"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 400  # a DNS-rebinding page cannot read the dashboard
    request = urllib.request.Request(f"{crafted_server.base}/api/info", headers={"Host": "localhost:1234"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200

