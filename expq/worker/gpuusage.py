"""What a worker tells others about GPUs: each running job's GPU memory and utilisation (in its run
directory, for ``expq status``; the peak goes into ``result.json``) and why jobs wait for a GPU (in
the workers folder, beside this worker's record, keyed by what the jobs need)."""
from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Mapping
from pathlib import Path

from expq._fs import atomic_write
from expq.worker.gpuwatch import PROBE_INTERVAL
from expq.worker.job import RunningJob
from expq.worker.placement import Placer

__all__ = ["GpuSampler"]

log = logging.getLogger(__name__)


class GpuSampler:
    """Samples running jobs' GPU use at most every ``PROBE_INTERVAL`` and publishes wait reasons;
    files are rewritten only when what they say changes."""

    def __init__(self, placer: Placer, reasons_file: Path) -> None:
        self.placer = placer
        self.reasons_file = reasons_file
        self._published: Mapping[str, str] | None = None
        self._written: dict[int, tuple[int, int | None]] = {}
        self._next = 0.0

    def sample(self, jobs: Iterable[RunningJob], now: float) -> None:
        if now < self._next:
            return
        self._next = now + PROBE_INTERVAL
        running = {job.spec.id: job for job in jobs if job.attempt.gpus}
        if not running:
            return
        usage = self.placer.job_usage({job_id: job.attempt.gpus for job_id, job in running.items()}, now)
        self._written = {job_id: value for job_id, value in self._written.items() if job_id in running}
        for job_id, (held, util) in usage.items():
            job = running[job_id]
            job.peak_gpu_mem_bytes = max(job.peak_gpu_mem_bytes or 0, held)
            if self._written.get(job_id) == (held, util):
                continue
            record = {"gpu_mem_bytes": held, "gpu_util": util, "peak_gpu_mem_bytes": job.peak_gpu_mem_bytes,
                      "sampled_at": time.time()}
            try:
                atomic_write(job.run.gpu_usage, json.dumps(record), durable=False)
            except OSError as exc:  # a full disk: status shows no GPU use for a while, the job goes on
                log.debug("job %d: could not write its GPU use (%s)", job_id, exc)
                continue
            self._written[job_id] = (held, util)

    def publish_reasons(self, reasons: Mapping[str, str]) -> None:
        """Why jobs of each shape (``result.gpu_shape_key``) wait for this worker's GPUs; only reasons worth
        saying are kept ("" means: waiting for this worker's own jobs to end)."""
        said = {key: reason for key, reason in reasons.items() if reason}
        if said == self._published:
            return
        try:
            if said:
                atomic_write(self.reasons_file, json.dumps(said), durable=False)
            else:
                self.reasons_file.unlink(missing_ok=True)
        except OSError as exc:  # status then shows no reason; the next change tries again
            log.debug("could not publish why jobs wait (%s)", exc)
            return
        self._published = said

    def close(self) -> None:
        self.reasons_file.unlink(missing_ok=True)
