"""Reading the GPUs without stalling the worker: each probe runs on a thread of its own, its answer is
reused for ``PROBE_INTERVAL`` seconds, and a failed or hung probe is retried after
``RETRY_AFTER_FAILURE`` seconds.

The worker waits ``PROBE_WAIT`` at most for a probe (an answer takes ~1 ms through NVML, ~0.1 s
through nvidia-smi); a slower one keeps running while the worker supervises its jobs, and GPU jobs
wait for its answer rather than start on GPUs whose memory and processes nobody has looked at. A
probe never outlives its timeout (``Prober``), so a hung driver costs one log line per failure.
"""
from __future__ import annotations

import logging
import math
import threading

from expq.worker.gpuprobe import GpuInfo, ProbeError, Prober

__all__ = ["GpuWatch", "PROBE_INTERVAL", "RETRY_AFTER_FAILURE", "PROBE_WAIT"]

log = logging.getLogger(__name__)

PROBE_INTERVAL = 2.0  # seconds a probe's answer is reused
RETRY_AFTER_FAILURE = 30.0  # seconds without probing after a failed or hung probe
PROBE_WAIT = 0.3  # seconds the worker waits for a probe before going on without its answer


class GpuWatch:
    """The latest answer of a ``Prober``, refreshed in the background when asked for."""

    def __init__(self, prober: Prober) -> None:
        self.prober = prober
        self.gpus: list[GpuInfo] | None = None  # the last answer (None: none, or the last probe failed)
        self.problem = ""  # why the last probe failed; "" while probing works
        self._probed_at = -math.inf
        self._retry_at = -math.inf
        self._thread: threading.Thread | None = None
        self._started_at = 0.0
        self._outcome: list[GpuInfo] | ProbeError | None = None

    def snapshot(self, now: float, wait: float = PROBE_WAIT) -> tuple[bool, list[GpuInfo] | None]:
        """``(ready, gpus)``: the GPUs as probed less than ``PROBE_INTERVAL`` ago, probing again (waiting
        ``wait`` seconds at most) when that answer is older. ``ready`` is False while a probe runs and
        there is no recent answer; ``gpus`` is None while probing fails (retried after a while)."""
        self._collect()
        if now - self._probed_at < PROBE_INTERVAL:
            return True, self.gpus
        if now < self._retry_at:
            return True, None
        if self._thread is None:
            self._start(now)
        if wait > 0 and self._thread is not None:
            self._thread.join(wait)
            self._collect()
        if now - self._probed_at < PROBE_INTERVAL:
            return True, self.gpus
        if now < self._retry_at:
            return True, None
        return False, self.gpus

    def _start(self, now: float) -> None:
        def run() -> None:
            try:
                self._outcome = self.prober.probe()
            except ProbeError as exc:
                self._outcome = exc

        self._started_at, self._outcome = now, None
        self._thread = threading.Thread(target=run, name="expq-gpu-probe", daemon=True)
        self._thread.start()

    def _collect(self) -> None:
        """Take a finished probe's answer (logging a failure once, and the recovery)."""
        if self._thread is None or self._thread.is_alive():
            return
        self._thread, outcome = None, self._outcome
        if isinstance(outcome, ProbeError):
            if str(outcome) != self.problem:
                log.warning("GPU probe failed: %s; until it works, GPUs are handed out whole, without memory "
                            "or other-process checks", outcome)
            self.problem, self.gpus = str(outcome), None
            self._retry_at = self._started_at + RETRY_AFTER_FAILURE
            return
        if outcome is None:  # the thread died without an answer: a bug in the probe, reported as a failure
            self.problem, self.gpus, self._retry_at = "the probe ended without an answer", None, \
                self._started_at + RETRY_AFTER_FAILURE
            return
        if self.problem:
            log.info("GPU probe works again (through %s)", self.prober.used)
            self.problem = ""
        self.gpus, self._probed_at = outcome, self._started_at
