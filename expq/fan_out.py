"""Render the consecutive blocks of a long sequence in forked helper processes, and hand them back
in order: ``status --json`` of 100,000 jobs is CPU-bound on reading, checking and encoding each job,
picking one experiment's jobs reads every spec, and the machines expq runs on have more than one core.

Each process walks the same items (the fork copies the iterator where the parent left it) and
renders only its own blocks, round-robin; a helper writes each rendered block to its own pipe,
length first, and the parent reads them when their turn comes. Memory stays flat: a helper is
at most a pipe's worth of blocks ahead, and blocks it is waiting to hand over block it. A helper
that dies (or writes half a block), or cannot be forked, costs nothing but time: the parent renders
its blocks itself.
"""
from __future__ import annotations

import fcntl
import itertools
import os
import signal
import struct
from collections.abc import Callable, Generator, Iterable, Iterator
from typing import NoReturn, TypeVar

__all__ = ["ordered_blocks", "helpers_for_this_machine"]

T = TypeVar("T")

_HEADER = struct.Struct("<Q")  # the length of a rendered block, before its bytes
_PIPE_BYTES = 1 << 20  # the most an unprivileged process may ask for (fs.pipe-max-size's default)
_MAX_HELPERS = 3


def helpers_for_this_machine() -> int:
    """One helper per CPU this process may run on, beside the parent, up to three (more is ahead of
    what the parent can write)."""
    return max(0, min(_MAX_HELPERS, len(os.sched_getaffinity(0)) - 1))


def ordered_blocks(items: Iterable[T], render: Callable[[list[T]], bytes], block: int,
                   helpers: int) -> Generator[bytes, None, None]:
    """``render`` of each run of ``block`` consecutive items, in order. With ``helpers`` > 0 and more
    than one block, block ``i`` is rendered by process ``i % (helpers + 1)``, the parent being 0.

    ``render`` must give the same bytes in any process for the same items (it reads the same files),
    and the caller must have no other thread (``fork`` copies only the calling one).
    """
    chunks = _chunks(iter(items), block)
    head = list(itertools.islice(chunks, 2))  # forked only when there are two blocks at least
    blocks = itertools.chain(head, chunks)
    if len(head) < 2 or helpers <= 0:
        yield from map(render, blocks)
    else:
        yield from _fan_out(blocks, render, helpers)


def _chunks(items: Iterator[T], block: int) -> Iterator[list[T]]:
    while chunk := list(itertools.islice(items, block)):
        yield chunk


def _fan_out(blocks: Iterator[list[T]], render: Callable[[list[T]], bytes], helpers: int) -> Iterator[bytes]:
    """The parent's side: start the helpers, then take each block from its owner in turn."""
    started: dict[int, tuple[int, int]] = {}  # owner -> (pid, read end)
    try:
        for owner in range(1, helpers + 1):
            helper = _start_helper(blocks, render, owner, helpers + 1, started)
            if helper is None:  # out of processes or descriptors: the parent renders that share too
                break
            started[owner] = helper
        for index, chunk in enumerate(blocks):
            owner = index % (helpers + 1)
            rendered = _take(started[owner][1]) if owner in started else None
            if rendered is None:  # the parent's own block, or a helper that is gone: rendered here
                _stop({owner: started.pop(owner)} if owner in started else {})
                rendered = render(chunk)
            yield rendered
    finally:
        _stop(started)


def _start_helper(blocks: Iterator[list[T]], render: Callable[[list[T]], bytes], owner: int, processes: int,
                  started: dict[int, tuple[int, int]]) -> tuple[int, int] | None:
    """Fork the helper ``owner``: (its pid, the read end of its pipe); None when it cannot be made."""
    try:
        read_end, write_end = os.pipe()
    except OSError:
        return None
    try:
        pid = os.fork()
    except OSError:
        os.close(read_end)
        os.close(write_end)
        return None
    if pid == 0:  # a helper: its blocks into the pipe, then gone without the parent's clean-up
        for fd in (read_end, *(end for _, end in started.values())):
            os.close(fd)  # a parent that dies leaves no reader: the helper's write fails and it ends
        _helper(blocks, render, owner, processes, write_end)
    os.close(write_end)
    return pid, read_end


def _helper(blocks: Iterator[list[T]], render: Callable[[list[T]], bytes], owner: int, processes: int,
            pipe: int) -> NoReturn:
    status = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_DFL)  # Ctrl-C ends the helper at once, not in a traceback
        try:
            fcntl.fcntl(pipe, fcntl.F_SETPIPE_SZ, _PIPE_BYTES)
        except OSError:  # a lower limit set by the admin: the default pipe works, only less ahead
            pass
        for index, chunk in enumerate(blocks):
            if index % processes == owner:
                rendered = render(chunk)
                _write_all(pipe, _HEADER.pack(len(rendered)) + rendered)
        status = 0
    finally:
        os._exit(status)  # never the parent's atexit, buffers or finally blocks


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _take(fd: int) -> bytes | None:
    """The next block a helper wrote; None when it ended without writing it whole."""
    header = _read_exactly(fd, _HEADER.size)
    if header is None:
        return None
    return _read_exactly(fd, _HEADER.unpack(header)[0])


def _read_exactly(fd: int, size: int) -> bytes | None:
    parts: list[bytes] = []
    while size:
        part = os.read(fd, min(size, _PIPE_BYTES))
        if not part:
            return None
        parts.append(part)
        size -= len(part)
    return b"".join(parts)


def _stop(started: dict[int, tuple[int, int]]) -> None:
    """Helpers still running when the parent stops early (an error, a closed stdout) are killed;
    every helper is waited for, so none is left a zombie."""
    for pid, read_end in started.values():
        os.close(read_end)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
