"""The dashboard in a real headless Chromium against a root that real workers filled."""
from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psutil
import pytest
from ui_support import Filled, Server, copy_if_asked, not_blank

from expq.experiment.table import cell_text

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parents[2]


def _open(browser: Any, url: str, wait_until: Callable[..., Any], ready: str) -> None:
    """Load a page and wait until the element ``ready`` (a CSS selector) is there."""
    from selenium.webdriver.common.by import By

    browser.get(url)
    wait_until(lambda: browser.find_elements(By.CSS_SELECTOR, ready), timeout=20,
               message=lambda: f"{ready} never appeared on {url}: {browser.find_element(By.TAG_NAME, 'body').text[:500]}")


def _texts(browser: Any, css: str) -> list[str]:
    """The text of every element matching ``css``, read in one step (a live page redraws between steps)."""
    return browser.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map((e) => e.innerText.trim())", css)


def _attrs(browser: Any, css: str, name: str) -> list[str]:
    return browser.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map((e) => e.getAttribute(arguments[1]))", css, name)


def _text(browser: Any, css: str) -> str:
    found = _texts(browser, css)
    assert found, f"nothing matches {css}"
    return found[0]


def _click(browser: Any, css: str) -> None:
    """Click the element matching ``css`` in one step."""
    assert browser.execute_script("const e = document.querySelector(arguments[0]); if (e) e.click(); return !!e", css)


def _choose(browser: Any, css: str, value: str) -> None:
    """Pick ``value`` in the <select> matching ``css`` as a user would (the change event fires)."""
    assert browser.execute_script(
        "const s = document.querySelector(arguments[0]); if (!s) return false; s.value = arguments[1];"
        "s.dispatchEvent(new Event('change')); return s.value === arguments[1]", css, value)


def _shot(browser: Any, artifacts: Path, name: str) -> Path:
    path = artifacts / f"{name}.png"
    assert browser.save_screenshot(str(path))
    assert not_blank(path) > 50, f"{path} looks blank"
    return path


def _loss_last(run_dir: Path, metric: str = "loss") -> float:
    *_, last = (run_dir / "metrics" / f"{metric}.csv").read_text().splitlines()
    return float(last.split(",")[1])


def test_queue_view_shows_counts_running_and_finished_jobs(browser: Any, server: Server, filled: Filled,
                                                           wait_until: Callable[..., Any], artifacts: Path) -> None:
    _open(browser, server.url, wait_until, f"#running tr[data-job='{filled.live}']")
    counts = dict(zip(_attrs(browser, "#counts .count", "data-state"), (t.split()[0] for t in _texts(browser, "#counts .count"))))
    assert counts["done"] == str(len(filled.sweep)) and counts["failed"] == "1" and counts["running"] == "1"
    cells = _texts(browser, f"#finished tr[data-job='{filled.failing}'] td")
    assert cells[1:5] == ["broken/exits-3", "failed", "3", "exit code 3"]  # name, state, exit code, reason
    assert browser.find_elements("css selector", f"#running tr[data-job='{filled.live}'] button[data-verb=cancel]")
    assert "token" not in browser.current_url  # taken out of the address bar, kept for the tab
    _shot(browser, artifacts, "queue-view")


def test_experiment_view_shows_what_is_on_disk(browser: Any, server: Server, filled: Filled,
                                               wait_until: Callable[..., Any], artifacts: Path) -> None:
    _open(browser, f"{server.base}/experiments/demo", wait_until, "#runs tbody tr")
    # a loaded machine may answer first with a partial table (metrics not read yet): it fills in live
    wait_until(lambda: "-" not in _texts(browser, "#runs td[data-column='loss.last']"), timeout=30,
               message="the table never showed every run's last loss")
    on_disk = sorted((filled.run_dir(j) for j in filled.sweep), key=lambda p: int(p.name.split("-")[0]))
    assert _texts(browser, "#runs tbody tr td:nth-child(2)") == [p.name for p in on_disk]  # natural order
    headers = _attrs(browser, "#runs th[data-column]", "data-column")
    assert "config.lr" in headers and "config.seed" in headers and "config.steps" not in headers
    assert "steps=60" in _text(browser, "#constants")
    for run_dir in on_disk:
        shown = _text(browser, f"#runs tr[data-run='{run_dir.name}'] td[data-column='loss.last']")
        assert float(shown) == pytest.approx(_loss_last(run_dir), rel=1e-5)
        lr = _text(browser, f"#runs tr[data-run='{run_dir.name}'] td[data-column='config.lr']")
        assert lr == cell_text(json.loads((run_dir / "run.json").read_text())["config"]["lr"])
    # sort by loss.last descending, then filter on lr
    _click(browser, "#runs th[data-column='loss.last']")
    _click(browser, "#runs th[data-column='loss.last']")
    shown = [float(t) for t in _texts(browser, "#runs td[data-column='loss.last']")]
    assert shown == sorted(shown, reverse=True)
    _choose(browser, "select.config-filter[data-key='config.lr']", "0.1")
    assert _texts(browser, "#runs td[data-column='config.lr']") == ["0.1"] * 3
    _choose(browser, "select.config-filter[data-key='config.lr']", "")
    _shot(browser, artifacts, "experiment-view-table")


def _traces(browser: Any, metric: str) -> list[str]:
    """The ``meta`` of every trace drawn in the chart of ``metric`` (run, mean or band)."""
    return browser.execute_script(
        "const c = document.querySelector(`.chart[data-metric='${arguments[0]}']`);"
        "return c && c.data ? c.data.map((t) => (Array.isArray(t.meta) ? t.meta[0] : t.meta)) : null;", metric) or []


def test_charts_follow_the_selection_and_group_by(browser: Any, server: Server, filled: Filled,
                                                  wait_until: Callable[..., Any], artifacts: Path) -> None:
    _open(browser, f"{server.base}/experiments/demo", wait_until, ".chart[data-metric='loss'] .main-svg")
    wait_until(lambda: _traces(browser, "loss") == ["run"] * 6, message=lambda: f"traces {_traces(browser, 'loss')}")
    assert _traces(browser, "val_loss") == ["run"] * 6
    shown = browser.execute_script(  # hover the 6th point of the first line, as a mouse would
        "const c = document.querySelector(`.chart[data-metric='loss']`); Plotly.Fx.hover(c, [{curveNumber: 0, pointNumber: 5}]);"
        "const t = c.querySelector('.hovertext'); return t ? t.textContent : ''")
    assert filled.run_dir(filled.sweep[0]).name in shown and "lr=0.02 seed=0" in shown and "5: " in shown
    colours = browser.execute_script("return document.querySelector(`.chart[data-metric='loss']`).data"
                                     ".map((t) => t.line.color)")
    assert len(set(colours)) == 6
    _click(browser, "#runs tr:nth-child(1) input.select-run")
    _click(browser, "#runs tr:nth-child(2) input.select-run")
    wait_until(lambda: _traces(browser, "loss") == ["run"] * 4, message=lambda: f"traces {_traces(browser, 'loss')}")
    _click(browser, "#select-all")
    wait_until(lambda: len(_traces(browser, "loss")) == 6)
    _choose(browser, "#group-by", "lr")
    expected = ["band", "band", "mean"] * 2  # two values of lr: a mean line and a band (two edges) each
    wait_until(lambda: _traces(browser, "loss") == expected, message=lambda: f"traces {_traces(browser, 'loss')}")
    names = browser.execute_script("return document.querySelector(`.chart[data-metric='loss']`).data"
                                   ".filter((t) => t.meta[0] === 'mean').map((t) => t.name)")
    assert names == ["lr=0.02 (3 runs)", "lr=0.1 (3 runs)"]
    _click(browser, "#log-y")
    wait_until(lambda: browser.execute_script(
        "return document.querySelector(`.chart[data-metric='loss']`).layout.yaxis.type") == "log")
    shot = _shot(browser, artifacts, "experiment-view-grouped")
    copy_if_asked(shot, REPO / "docs" / "img" / "experiment-view.png")


def test_run_view_shows_config_result_attempts_files_and_logs(browser: Any, server: Server, filled: Filled,
                                                             wait_until: Callable[..., Any], artifacts: Path) -> None:
    run_dir = filled.run_dir(filled.sweep[0])
    from PIL import Image

    Image.new("RGB", (40, 30), (200, 30, 30)).save(run_dir / "files" / "sample.png")  # as exp.save(figure) would
    _open(browser, f"{server.base}/experiments/demo/runs/{run_dir.name}", wait_until, "#files li")
    config = _text(browser, "#config")
    assert "lr" in config and "seed" in config and "steps" in config
    assert "exit_code" in _text(browser, "#outcome")
    assert _texts(browser, "#attempts tbody td:nth-child(2)") == ["done"]
    files = _texts(browser, "#files li > a:first-child")
    assert files == [f"files/{name}" for name in ("sample.png", "weights/w1.npy", "weights/w2.npy")]
    wait_until(lambda: browser.execute_script("const i = document.querySelector('#files img');"
                                              "return i && i.complete ? i.naturalWidth : 0") == 40,
               message="the saved image is not shown inline")
    wait_until(lambda: "val_loss" in _text(browser, "#log")
               or "lr=" in _text(browser, "#log"),
               message=lambda: _text(browser, "#log")[:300])
    assert (run_dir / "stdout.log").read_text().strip() in _text(browser, "#log")
    _shot(browser, artifacts, "run-view")


def test_following_a_running_job_log_shows_it_grow(browser: Any, server: Server, filled: Filled,
                                                   wait_until: Callable[..., Any], artifacts: Path) -> None:
    _open(browser, f"{server.base}/jobs/{filled.live}", wait_until, "#log[data-offset]")

    def last_tick() -> int:
        ticks = [int(line.split()[1]) for line in _text(browser, "#log").splitlines()
                 if line.startswith("tick ")]
        return ticks[-1] if ticks else -1

    first = wait_until(lambda: last_tick() + 1, message="no tick shown") - 1
    wait_until(lambda: last_tick() >= first + 5, message=lambda: f"the log stayed at tick {last_tick()}")
    _shot(browser, artifacts, "job-log")


def test_charts_of_a_running_run_grow_without_a_reload(browser: Any, server: Server, filled: Filled,
                                                      wait_until: Callable[..., Any]) -> None:
    _open(browser, f"{server.base}/experiments/live", wait_until, ".chart[data-metric='progress'] .main-svg")

    def points() -> int:
        return browser.execute_script("const c = document.querySelector(`.chart[data-metric='progress']`);"
                                      "return c && c.data && c.data.length ? c.data[0].x.length : 0")

    first = wait_until(points, message="the live run's chart has no points")
    wait_until(lambda: points() > first, timeout=20, message=lambda: f"the chart stayed at {points()} points")


def _post(url: str, token: str | None) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, method="POST", headers={"X-Expq-Token": token} if token is not None else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_actions_need_the_token(server: Server, filled: Filled) -> None:
    assert _post(f"{server.base}/api/jobs/{filled.failing}/retry", None)[0] == 403
    assert _post(f"{server.base}/api/jobs/{filled.failing}/retry", "wrong")[0] == 403
    assert _post(f"{server.base}/api/jobs/{filled.live}/cancel", "")[0] == 403
    from expq.queue.store import JobQueue

    assert JobQueue(filled.root).state_of(filled.failing).value == "failed"  # nothing changed
    status, body = _post(f"{server.base}/api/jobs/{filled.sweep[0]}/retry", server.token)
    assert status == 409 and "cannot retry" in body["error"]


def test_read_only_dashboard_offers_no_actions(browser: Any, filled: Filled, wait_until: Callable[..., Any]) -> None:
    read_only = Server(filled.root, "--read-only")
    try:
        assert read_only.token == ""
        assert _post(f"{read_only.base}/api/jobs/{filled.failing}/retry", "anything")[0] == 403
        _open(browser, read_only.url, wait_until, f"#finished tr[data-job='{filled.failing}']")
        assert not browser.find_elements("css selector", "button.action")
    finally:
        read_only.stop()


def test_cancel_from_the_queue_view_kills_the_process_tree(browser: Any, server: Server, filled: Filled,
                                                           wait_until: Callable[..., Any], artifacts: Path) -> None:
    pids = [int(p) for p in (filled.run_dir(filled.live) / "pids.txt").read_text().split()]
    assert all(psutil.pid_exists(p) for p in pids)
    _open(browser, server.url, wait_until, f"#running tr[data-job='{filled.live}'] button[data-verb=cancel]")
    _click(browser, f"#running tr[data-job='{filled.live}'] button[data-verb=cancel]")
    wait_until(lambda: browser.find_elements("css selector", f"#finished tr[data-job='{filled.live}']"), timeout=30,
               message="the cancelled job never showed among the finished ones")
    assert "cancelled" in _text(browser, f"#finished tr[data-job='{filled.live}']")

    def dead(pid: int) -> bool:
        try:
            return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
        except psutil.NoSuchProcess:
            return True

    wait_until(lambda: all(dead(p) for p in pids), timeout=20, message=f"processes {pids} still alive")
    _shot(browser, artifacts, "queue-after-cancel")
    assert browser.find_elements("css selector", f"#finished tr[data-job='{filled.live}'] button[data-verb=retry]")


def test_experiments_list(browser: Any, server: Server, wait_until: Callable[..., Any], artifacts: Path) -> None:
    _open(browser, f"{server.base}/experiments", wait_until, "#experiments tr[data-experiment='demo']")
    assert _texts(browser, "#experiments tbody td:first-child") == ["broken", "demo", "live"]
    assert "6 done" in _text(browser, "#experiments tr[data-experiment='demo']")
    _shot(browser, artifacts, "experiments")
