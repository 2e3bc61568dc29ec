"""One root filled by real workers, one ``expq ui`` server and one headless Chromium for the module.

The root: a 6-run sweep of examples/train.py (lr x seed) drained by a real worker, a job that
exits 3, and a live job (tests/ui/live_job.py) kept running by a second worker: it prints and
logs a metric every 0.1 s. The browser is Debian's chromium driven through /usr/bin/chromedriver
(installed by ci/browser.sh; Selenium Manager never downloads anything). Without a browser the
browser tests skip with the reason, except under CI=true, where they fail.
"""
from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ui_support import CHROMEDRIVER, CHROMIUM, Filled, Server, browser_missing, fill_root, in_ci


@pytest.fixture(scope="module")
def filled(tmp_path_factory: pytest.TempPathFactory, wait_until: Callable[..., Any]) -> Iterator[Filled]:
    base = tmp_path_factory.mktemp("ui")
    made = fill_root(base / "root", base, wait_until)
    yield made
    if made.worker is not None and made.worker.poll() is None:
        made.worker.send_signal(signal.SIGTERM)  # stops its job's process tree and requeues it
        try:
            made.worker.wait(15)
        except subprocess.TimeoutExpired:
            made.worker.kill()
            made.worker.wait()


@pytest.fixture(scope="module")
def server(filled: Filled) -> Iterator[Server]:
    made = Server(filled.root)
    yield made
    if made.proc.poll() is None:
        made.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    why = browser_missing()
    if why:
        if in_ci():
            pytest.fail(f"no browser under CI=true: {why}")
        pytest.skip(why)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1400,1000", "--no-first-run", "--disable-extensions"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: $EXPQ_TEST_ARTIFACTS/ui, else a temp folder."""
    chosen = os.environ.get("EXPQ_TEST_ARTIFACTS")
    folder = Path(chosen) / "ui" if chosen else tmp_path_factory.mktemp("ui-artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
