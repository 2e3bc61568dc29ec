"""Recognising a job that died of CUDA running out of memory, from the end of its ``stderr.log``."""
from __future__ import annotations

import os
import re
from pathlib import Path

from expq._fs import open_regular
from expq.queue.spec import format_size

__all__ = ["ran_out_of_gpu_memory", "oom_reason", "TAIL_BYTES"]

TAIL_BYTES = 64 << 10  # the traceback of an OOM is at the end; a long log is not read whole
ATTEMPT_HEADER = b"=== expq job "
# PyTorch ("CUDA out of memory"), the CUDA runtime and driver APIs, CuPy, JAX/XLA and TensorFlow.
_OOM = re.compile(rb"CUDA out of memory|CUDA_ERROR_OUT_OF_MEMORY|cudaErrorMemoryAllocation|"
                  rb"cupy\S*OutOfMemoryError|RESOURCE_EXHAUSTED: Out of memory|OOM when allocating")


def ran_out_of_gpu_memory(stderr_log: Path) -> bool:
    """Whether the current attempt's part of ``stderr.log`` (after its header) reports a CUDA OOM."""
    try:  # the job may have put anything in the log's place: a FIFO is refused, not waited on
        fd, size = open_regular(stderr_log)
        try:
            tail = os.pread(fd, TAIL_BYTES, max(0, size - TAIL_BYTES))
        finally:
            os.close(fd)
    except OSError:
        return False
    start = tail.rfind(ATTEMPT_HEADER)
    return _OOM.search(tail[start if start >= 0 else 0:]) is not None


def oom_reason(reason: str, gpu_mem: int | None) -> str:
    """``CUDA out of memory (exit code 1)``, with a hint when the job asked for a share of a GPU."""
    text = f"CUDA out of memory ({reason})"
    if gpu_mem is not None:
        text += f"; it asked for --gpu-mem {format_size(gpu_mem)}: submit it with a larger --gpu-mem"
    return text
