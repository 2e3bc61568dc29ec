"""Blocks of a sequence rendered by forked helper processes come back whole and in order, whoever
rendered them: a helper that dies or is killed costs only time, a parent that stops early leaves no
helper behind (real forks, pipes and signals)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import psutil
import pytest

from expq import fan_out
from expq.fan_out import ordered_blocks


def tagged(chunk: list[int]) -> bytes:
    """A block naming the process that rendered it: ``<pid>:<first>-<last>``."""
    return f"{os.getpid()}:{chunk[0]}-{chunk[-1]};".encode()


def parse(blocks: Iterator[bytes]) -> list[tuple[int, int, int]]:
    out = []
    for block in blocks:
        pid, _, span = block.decode().rstrip(";").partition(":")
        first, _, last = span.partition("-")
        out.append((int(pid), int(first), int(last)))
    return out


def spans(items: int, block: int) -> list[tuple[int, int]]:
    return [(start, min(start + block, items) - 1) for start in range(0, items, block)]


def child_pids() -> set[int]:
    """This process's children: other tests may have left some (a worker they started)."""
    return {child.pid for child in psutil.Process().children()}


@pytest.fixture
def no_helper_left() -> Iterator[None]:
    before = child_pids()
    yield
    assert child_pids() <= before  # every helper was waited for: not even a zombie is left


@pytest.mark.parametrize("helpers", [0, 1, 3])
@pytest.mark.parametrize(("items", "block"), [(0, 5), (1, 5), (5, 5), (6, 5), (1000, 7), (2000, 500)])
def test_blocks_come_back_in_order_each_from_its_owner(helpers: int, items: int, block: int,
                                                       no_helper_left: None) -> None:
    got = parse(ordered_blocks(range(items), tagged, block, helpers))
    assert [(first, last) for _, first, last in got] == spans(items, block)
    if len(got) > 1 and helpers:  # block i from process i % (helpers + 1), the parent being 0
        pids = [pid for pid, _, _ in got]
        assert pids[0] == os.getpid()
        owners = {index % (helpers + 1): pid for index, pid in enumerate(pids)}
        assert all(pid == owners[index % (helpers + 1)] for index, pid in enumerate(pids))
        assert len(set(owners.values())) == min(helpers + 1, len(got))
    else:
        assert {pid for pid, _, _ in got} <= {os.getpid()}


def test_the_blocks_of_a_helper_that_dies_are_rendered_by_the_parent(no_helper_left: None) -> None:
    parent = os.getpid()

    def dies_at_its_third_block(chunk: list[int]) -> bytes:
        if os.getpid() != parent and chunk[0] >= 50:
            os._exit(3)
        return tagged(chunk)

    got = parse(ordered_blocks(range(100), dies_at_its_third_block, 10, helpers=1))
    assert [(first, last) for _, first, last in got] == spans(100, 10)
    assert [pid == parent for pid, _, _ in got] == [True, False, True, False, True, True, True, True, True, True]


def test_a_helper_killed_while_it_works_costs_nothing_but_time(no_helper_left: None) -> None:
    parent = os.getpid()
    others = child_pids()
    gate, held_open = os.pipe()  # nothing is ever written: a helper waits on it until it is killed

    def helpers_hang_until_killed(chunk: list[int]) -> bytes:
        if os.getpid() != parent:
            os.read(gate, 1)
        elif chunk[0] == 0:
            for helper in child_pids() - others:
                os.kill(helper, signal.SIGKILL)
        return tagged(chunk)

    try:
        got = parse(ordered_blocks(range(300), helpers_hang_until_killed, 10, helpers=2))
    finally:
        os.close(gate)
        os.close(held_open)
    assert [(first, last) for _, first, last in got] == spans(300, 10)
    assert {pid for pid, _, _ in got} == {parent}


def test_half_a_block_counts_as_none() -> None:
    read_end, write_end = os.pipe()
    try:
        os.write(write_end, fan_out._HEADER.pack(100) + b"x" * 50)
        os.close(write_end)
        assert fan_out._take(read_end) is None
    finally:
        os.close(read_end)


def test_an_error_in_the_parent_stops_and_reaps_every_helper(no_helper_left: None) -> None:
    parent = os.getpid()
    others = child_pids()
    seen: list[int] = []

    def fails_at_its_second_block(chunk: list[int]) -> bytes:
        if os.getpid() == parent and chunk[0] == 40:
            seen.extend(child_pids() - others)
            raise RuntimeError("rendering failed")
        return tagged(chunk) + b"." * (64 << 10)  # the helpers fill their pipes and wait, alive

    with pytest.raises(RuntimeError, match="rendering failed"):
        list(ordered_blocks(range(10_000), fails_at_its_second_block, 10, helpers=3))
    assert len(seen) == 3


def test_a_reader_that_stops_early_leaves_no_helper(no_helper_left: None) -> None:
    others = child_pids()

    def big(chunk: list[int]) -> bytes:  # 64 KiB a block: the helpers fill their pipes and wait, alive
        return tagged(chunk) + b"." * (64 << 10)

    blocks = ordered_blocks(range(10_000), big, 10, helpers=2)
    assert [next(blocks).split(b";")[0].partition(b":")[2] for _ in range(2)] == [b"0-9", b"10-19"]
    assert len(child_pids() - others) == 2
    blocks.close()


def test_helpers_follow_the_cpus_this_process_may_use() -> None:
    """One CPU allowed: no helper (nothing is forked); more: one per further CPU, three at most."""
    pinned = subprocess.run([sys.executable, "-c", "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); "
                             "from expq.fan_out import helpers_for_this_machine as h; print(h())"],
                            capture_output=True, text=True, timeout=60, check=True)
    assert pinned.stdout.strip() == "0"
    cpus = len(os.sched_getaffinity(0))
    assert fan_out.helpers_for_this_machine() == min(3, cpus - 1)


FORK_REFUSED = """
import os, resource, sys
from expq.fan_out import ordered_blocks
if os.getuid() == 0:  # root is above process limits: run as nobody
    os.setgid(65534)
    os.setuid(65534)
resource.setrlimit(resource.RLIMIT_NPROC, (1, 1))  # this process alone: every fork fails (EAGAIN)
blocks = ordered_blocks(range(100), lambda chunk: f"{os.getpid()}:{chunk[0]};".encode(), 10, helpers=3)
sys.stdout.write(b"".join(blocks).decode())
"""


def test_helpers_that_cannot_be_forked_leave_every_block_to_the_parent() -> None:
    """A real refusal (a process limit, as on a login node at its limit): the output is whole, from one process."""
    done = subprocess.run([sys.executable, "-c", FORK_REFUSED], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    made = [part.split(":") for part in done.stdout.rstrip(";").split(";")]
    assert [int(first) for _, first in made] == list(range(0, 100, 10))
    assert len({pid for pid, _ in made}) == 1
