"""``expq ui`` on a generated experiment of 1,000 runs x 3 metrics x 10,000 points (``--quick``: 100 x 3 x
2,000): how fast the experiment view's data arrives (cold, complete, warm), how fast the charts of 20
selected runs draw in headless Chromium (when ci/browser.sh installed it), the server's peak RSS, and
how many bytes one poll of a growing metric reads (it should be what was appended, not the file). Then
the queue view and the experiments list on the 100,000-job queue of bench_status (--quick: 2,000)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from benchmarks._common import Check, Config, Row, Stat, bench_main

__all__ = ["run", "fabricate"]

METRICS = ("loss", "val_loss", "accuracy")
VARIANTS = 16  # distinct point sets per metric; runs share them (reading cost does not depend on the values)
LINE = "%d,%.17g,%.3f\n"  # the format expq.experiment.metrics writes


def fabricate(root: Path, runs: int, points: int) -> Path:
    """An experiment ``bench`` of ``runs`` by-hand runs (run.json + metrics/*.csv); returns its directory."""
    import numpy as np

    rng = np.random.default_rng(0)
    steps = np.arange(points)
    blocks: dict[str, list[bytes]] = {}
    for metric in METRICS:
        blocks[metric] = []
        for variant in range(VARIANTS):
            scale = 1 + variant / VARIANTS
            curve = scale * np.exp(-steps / (points / 4)) + 0.05 * rng.random(points)
            values = 1 - curve / 2 if metric == "accuracy" else curve
            stamps = 1.7e9 + steps * 0.05
            text = "step,value,time\n" + "".join(LINE % row for row in zip(steps.tolist(), values.tolist(), stamps.tolist()))
            blocks[metric].append(text.encode())
    experiment = root / "experiments" / "bench"
    for index in range(runs):
        run = experiment / f"{index + 1}-run"
        (run / "metrics").mkdir(parents=True)
        config = {"lr": [0.001, 0.003, 0.01, 0.03, 0.1][index % 5], "seed": index // 5, "model": {"depth": 4}}
        meta = {"version": 1, "experiment": "bench", "run": run.name, "state": "done", "config": config,
                "duration_s": 60.0 + index % 17, "pid": 0, "host": "bench"}
        (run / "run.json").write_text(json.dumps(meta))
        for metric in METRICS:
            (run / "metrics" / f"{metric}.csv").write_bytes(blocks[metric][index % VARIANTS])
    return experiment


class _Server:
    def __init__(self, cfg: Config, root: Path) -> None:
        self.proc = subprocess.Popen([cfg.expq, "--root", str(root), "ui", "--port", "0", "--read-only"],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=cfg.env())
        assert self.proc.stdout is not None
        self.base = self.proc.stdout.readline().strip().rstrip("/")
        if not self.base.startswith("http://"):
            raise RuntimeError("expq ui printed no URL")
        import psutil

        self.ps = psutil.Process(self.proc.pid)
        self.peak = 0

    def get(self, path: str) -> tuple[float, Any]:
        start = time.perf_counter()
        with urllib.request.urlopen(self.base + path, timeout=120) as response:
            data = json.loads(response.read())
        elapsed = time.perf_counter() - start
        self.peak = max(self.peak, self.ps.memory_info().rss)
        return elapsed, data

    def read_chars(self) -> int:
        return int(self.ps.io_counters().read_chars)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def _browser_draw(base: str, selected: int) -> dict[str, float] | str:
    """Milliseconds the experiment view's charts take in headless Chromium, or why not measured:
    waiting for plotly.js and the draw (fetch + render) on a first view, a redraw after switching x,
    and a whole reload (plotly.js from the browser's cache)."""
    chromium, driver_path = "/usr/bin/chromium", "/usr/bin/chromedriver"
    if not (os.path.exists(chromium) and os.path.exists(driver_path)):
        return "no chromium (run ci/browser.sh as root)"
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    read = "const c = document.getElementById('charts'); return c ? [Number(c.dataset.drawn || 0), " \
           "Number(c.dataset.plotlyMs), Number(c.dataset.drawMs), Number(c.dataset.fetchMs)] : [0, 0, 0, 0]"
    fetched: list[float] = []  # of each draw, the part spent fetching the points

    def drawn(at_least: int) -> tuple[float, float]:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            count, plotly, draw, fetch = driver.execute_script(read)
            if count >= at_least:
                fetched.append(float(fetch))
                return float(plotly), float(draw)
            time.sleep(0.05)
        raise RuntimeError("the charts were never drawn")

    try:
        start = time.perf_counter()
        driver.get(base + "/experiments/bench")
        plotly, draw = drawn(1)
        first_view = (time.perf_counter() - start) * 1000
        traces = driver.execute_script("return document.querySelector('.chart').data.length")
        if traces != selected:
            raise RuntimeError(f"{traces} traces drawn, expected {selected}")
        driver.execute_script("const s = document.getElementById('x-axis'); s.value = 'time'; s.dispatchEvent(new Event('change'))")
        _, redraw = drawn(2)
        start = time.perf_counter()
        driver.refresh()
        cached_plotly, cached_draw = drawn(1)
        reload_view = (time.perf_counter() - start) * 1000
        return {"plotly": plotly, "draw": draw, "first_view": first_view, "redraw": redraw,
                "reload_plotly": cached_plotly, "reload_draw": cached_draw, "reload_view": reload_view,
                "fetch": fetched[0], "refetch": fetched[1]}
    finally:
        driver.quit()


def _queue_rows(cfg: Config) -> list[Row]:
    """The queue view and the experiments list on a queue of 100,000 jobs (--quick: 2,000)."""
    from benchmarks.bench_status import fabricate as fabricate_queue

    total = 2_000 if cfg.quick else 100_000
    root = cfg.fresh_dir("ui-queue") / "root"
    fabricate_queue(root, total)
    server = _Server(cfg, root)
    try:
        queue = [server.get("/api/queue")[0] for _ in range(max(cfg.reps, 3))]
        answers, start = [], time.perf_counter()
        while True:
            elapsed, listed = server.get("/api/experiments")
            answers.append(elapsed)
            if "not read yet" not in listed[0]["states"]:
                break
            time.sleep(1)
        complete = time.perf_counter() - start
        warm = [server.get("/api/experiments")[0] for _ in range(max(cfg.reps, 3))]
    finally:
        server.stop()
    return [
        Row(f"ui: queue view data, {total:,} jobs", "s", Stat(queue), check=Check("< 1 s", expq_max=1.0)),
        Row(f"ui: experiments list, {total:,} runs, each answer until all states read", "s", Stat(answers),
            check=Check("< 1 s", expq_max=1.0)),
        Row(f"ui: experiments list, {total:,} runs, time until every state is read (polling every 1 s)", "s",
            Stat([complete])),
        Row(f"ui: experiments list, {total:,} runs, warm", "s", Stat(warm), check=Check("< 1 s", expq_max=1.0)),
    ]


def run(cfg: Config) -> list[Row]:
    return _experiment_rows(cfg) + _queue_rows(cfg)


def _experiment_rows(cfg: Config) -> list[Row]:
    runs, points = (100, 2_000) if cfg.quick else (1_000, 10_000)
    root = cfg.fresh_dir("ui") / "root"
    start = time.perf_counter()
    experiment = fabricate(root, runs, points)
    made = time.perf_counter() - start
    size = sum(f.stat().st_size for f in experiment.rglob("*.csv"))
    server = _Server(cfg, root)
    try:
        cold, data = server.get("/api/experiments/bench/runs")
        if len(data["rows"]) != runs:
            raise RuntimeError(f"the runs table has {len(data['rows'])} rows, expected {runs}")
        polls, complete = 1, cold
        while data["partial"]:
            elapsed, data = server.get("/api/experiments/bench/runs")
            polls, complete = polls + 1, complete + elapsed
        warm = [server.get("/api/experiments/bench/runs")[0] for _ in range(max(cfg.reps, 3))]
        names = "&".join(f"run={r['run']}" for r in data["rows"][:20])
        series = []
        for _ in range(max(cfg.reps, 3)):
            total = 0.0
            for metric in METRICS:
                elapsed, got = server.get(f"/api/experiments/bench/series?metric={metric}&{names}")
                total += elapsed
                if len(got["lines"]) != 20:
                    raise RuntimeError("series: not 20 lines")
            series.append(total)
        # a live chart's poll after 100 new points: the server should read those bytes only
        target = experiment / data["rows"][0]["run"] / "metrics" / "loss.csv"
        poll = f"/api/experiments/bench/series?metric=loss&run={data['rows'][0]['run']}"
        for step in (points, points + 100):  # the first round loads code the next ones only run
            before_size = target.stat().st_size
            with open(target, "a") as handle:
                handle.write("".join(LINE % (step + i, 0.5, 1.8e9 + i) for i in range(100)))
            appended = target.stat().st_size - before_size
            before = server.read_chars()
            server.get(poll)
            poll_bytes = server.read_chars() - before
        drawn = _browser_draw(server.base, 20)
        server.peak = max(server.peak, server.ps.memory_info().rss)
        peak_mb = server.peak / 2**20
    finally:
        server.stop()
    cfg.notes.append(f"ui: {runs:,} runs x {len(METRICS)} metrics x {points:,} points, {size / 2**20:,.0f} MiB of CSV, "
                     f"generated in {made:.1f} s; the first runs-table answer was partial (metrics read within a "
                     f"time budget, then last values only, then nothing until the next poll), complete after {polls} polls")
    rows = [
        Row(f"ui: experiment view data, {runs:,} runs, cold (first answer)", "s", Stat([cold]), check=Check("< 1 s", expq_max=1.0)),
        Row(f"ui: experiment view data, {runs:,} runs, until complete (all polls)", "s", Stat([complete])),
        Row(f"ui: experiment view data, {runs:,} runs, warm", "s", Stat(warm), check=Check("< 1 s", expq_max=1.0)),
        Row("ui: series of 20 runs x 3 metrics (server, cold then cached)", "s", Stat(series), check=Check("< 1 s", expq_max=1.0)),
        Row("ui: server peak RSS", "MB", Stat([peak_mb]), check=Check("< 300 MB", expq_max=300.0)),
        Row(f"ui: bytes read by one poll of a growing metric ({appended:,} B appended, file {before_size:,} B)", "B",
            Stat([float(poll_bytes)]), peer_label="appended", peer=Stat([float(appended)]), check=Check("< 2x appended", ratio_max=2.0)),
    ]
    if isinstance(drawn, str):
        rows.append(Row("ui: charts of 20 runs drawn in Chromium", "s", None, status=f"skipped: {drawn}"))
    else:
        cfg.notes.append(f"ui in Chromium: of the charts' first draw ({drawn['draw']:.0f} ms), {drawn['fetch']:.0f} ms "
                         f"fetching the 60 series; of the redraw ({drawn['redraw']:.0f} ms), {drawn['refetch']:.0f} ms")
        cfg.notes.append(f"ui in Chromium: first view {drawn['first_view']:.0f} ms from navigation to charts drawn, "
                         f"of which {drawn['plotly']:.0f} ms waiting for plotly.js (4.6 MB) after the runs table; "
                         f"after a reload {drawn['reload_view']:.0f} ms ({drawn['reload_plotly']:.0f} ms for plotly.js)")
        rows.append(Row("ui: charts of 20 runs x 3 metrics: fetch + draw in Chromium, first view", "s",
                        Stat([drawn["draw"] / 1000]), check=Check("< 1 s", expq_max=1.0)))
        rows.append(Row("ui: charts redrawn after switching x to wall time (60 series fetched again)", "s",
                        Stat([drawn["redraw"] / 1000]), check=Check("< 1 s", expq_max=1.0)))
        rows.append(Row("ui: experiment view after a reload, navigation to charts drawn (plotly.js cached)", "s",
                        Stat([drawn["reload_view"] / 1000])))
        rows.append(Row("ui: first view, navigation to charts drawn (plotly.js loaded and parsed once)", "s",
                        Stat([drawn["first_view"] / 1000])))
    return rows


def main(argv: list[str] | None = None) -> int:
    return bench_main("bench_ui", __doc__.splitlines()[0], run, argv)


if __name__ == "__main__":
    sys.exit(main())
