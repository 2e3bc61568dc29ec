"""Remake docs/img/experiment-view.png: a 12-run sweep of examples/train.py run by a real worker, shown
by ``expq ui`` in headless Chromium with the charts grouped by lr. Run by hand, not by pytest:

    .venv/bin/python tests/ui/docs_screenshot.py
"""
from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "docs" / "img" / "experiment-view.png"


def _expq(root: Path, *args: str) -> str:
    return subprocess.run([sys.executable, "-m", "expq", "--root", str(root), *args], cwd=REPO, check=True,
                          capture_output=True, text=True).stdout


def _wait(check: object, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.1)


def main() -> None:
    from PIL import Image
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    root = Path(tempfile.mkdtemp(prefix="expq-docs-")) / "expq-root"
    _expq(root, "submit", "--experiment", "mlp-sweep", "--sweep", "lr=0.02,0.05,0.1", "--sweep", "seed=0,1,2,3",
          "--sweep", "hidden=16", "--set", "steps=200", "--", sys.executable, "examples/train.py")
    _expq(root, "worker", "--gpus", "none", "--slots", "2", "--drain", "--poll", "0.05")
    server = subprocess.Popen([sys.executable, "-m", "expq", "--root", str(root), "ui", "--port", "0"],
                              stdout=subprocess.PIPE, text=True, cwd=REPO)
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1250"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(executable_path="/usr/bin/chromedriver"))
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        driver.get(url)
        driver.get(url.split("/?")[0] + "/experiments/mlp-sweep")
        _wait(lambda: driver.execute_script("const c = document.querySelector('.chart'); return c && c.data && c.data.length"),
              "the charts")
        driver.execute_script("const s = document.getElementById('group-by'); s.value = 'lr'; s.dispatchEvent(new Event('change'))")
        _wait(lambda: driver.execute_script("return document.querySelector('.chart').data.length") == 9, "grouped charts")
        driver.execute_script("const s = document.getElementById('smoothing'); s.value = '0.6'; s.dispatchEvent(new Event('input'))")
        time.sleep(0.5)  # let plotly finish its transition before the picture (a script, not a test)
        shot = Path(tempfile.mkdtemp()) / "shot.png"
        driver.save_screenshot(str(shot))
    finally:
        driver.quit()
        server.terminate()
        server.wait()
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(shot) as image:
        image.convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT).save(OUT, optimize=True)
    print(f"{OUT} ({OUT.stat().st_size // 1024} kB)")


if __name__ == "__main__":
    main()
