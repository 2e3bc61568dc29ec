"""``result.json``: how a job's last attempt ended, written atomically and last."""
from __future__ import annotations

import json
from typing import Any

from expq._fs import atomic_write
from expq.queue.attempts import Attempt
from expq.queue.paths import RunPaths
from expq.queue.states import State

__all__ = ["RESULT_VERSION", "result_record", "write_result"]

RESULT_VERSION = 1


def result_record(job_id: int, state: State, attempt: Attempt, peak_rss_bytes: int) -> dict[str, Any]:
    finished = attempt.finished_at or attempt.started_at
    return {
        "version": RESULT_VERSION, "job_id": job_id, "state": state.value, "outcome": attempt.outcome.value,
        "reason": attempt.reason, "exit_code": attempt.exit_code, "signal": attempt.signal,
        "attempts": attempt.number, "host": attempt.host, "worker_id": attempt.worker_id,
        "slurm_job": attempt.slurm_job, "gpus": list(attempt.gpus), "started_at": attempt.started_at,
        "finished_at": finished, "duration": round(finished - attempt.started_at, 6),
        "peak_rss_bytes": peak_rss_bytes,
    }


def write_result(run: RunPaths, record: dict[str, Any]) -> None:
    """Not fsynced: after a power loss a job may run again, and a torn result is never trusted
    (readers treat unparseable JSON as absent). The fsync would cost ~0.4 ms per job."""
    atomic_write(run.result, json.dumps(record, separators=(",", ":")), durable=False)
