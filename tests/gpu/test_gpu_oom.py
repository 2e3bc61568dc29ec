"""Recognising CUDA out of memory in the current attempt's part of stderr.log."""
from __future__ import annotations

import pytest

from expq.worker.oom import TAIL_BYTES, oom_reason, ran_out_of_gpu_memory

HEADER = "=== expq job 7 attempt {n} on box at 2026-11-30 08:00:00 ===\n"


@pytest.mark.parametrize("message", [
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB",
    "RuntimeError: CUDA error: out of memory\nCUDA_ERROR_OUT_OF_MEMORY",
    "cudaErrorMemoryAllocation: out of memory",
    "cupy.cuda.memory.OutOfMemoryError: Out of memory allocating 1,073,741,824 bytes",
    "jaxlib.xla_extension.XlaRuntimeError: RESOURCE_EXHAUSTED: Out of memory while trying to allocate",
    "ResourceExhaustedError: OOM when allocating tensor with shape[1024,1024]",
])
def test_the_messages_of_the_usual_frameworks_are_recognised(tmp_path, message):
    log = tmp_path / "stderr.log"
    log.write_text(HEADER.format(n=1) + "Traceback (most recent call last):\n" + message + "\n")
    assert ran_out_of_gpu_memory(log)


def test_only_the_current_attempt_counts_and_only_the_end_is_read(tmp_path):
    log = tmp_path / "stderr.log"
    log.write_text(HEADER.format(n=1) + "CUDA out of memory\n" + HEADER.format(n=2) + "ValueError: bad config\n")
    assert not ran_out_of_gpu_memory(log)
    log.write_text(HEADER.format(n=1) + "CUDA out of memory\n" + "x" * (TAIL_BYTES + 10) + "\nexit\n")
    assert not ran_out_of_gpu_memory(log)  # long gone from the end: another failure followed
    assert not ran_out_of_gpu_memory(tmp_path / "absent.log")


def test_the_reason_hints_at_gpu_mem_when_the_job_asked_for_a_share():
    assert oom_reason("exit code 1", None) == "CUDA out of memory (exit code 1)"
    assert oom_reason("killed by SIGABRT", 3 << 29) == (
        "CUDA out of memory (killed by SIGABRT); it asked for --gpu-mem 1.5 GiB: submit it with a larger --gpu-mem")
