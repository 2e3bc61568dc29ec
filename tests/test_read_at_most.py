"""Reading a file whole, but never more than a limit (plus the one byte that tells it is too large), and the
JSON readers built on it."""
from __future__ import annotations

import errno
import json
import os
import threading
from pathlib import Path

import pytest

from expq._fs import read_at_most


@pytest.mark.parametrize("regular", [False, True])
@pytest.mark.parametrize("size", [0, 1, 400, 64 << 10, (64 << 10) + 1, 300_000])
def test_a_file_within_the_limit_is_read_whole(tmp_path: Path, size: int, regular: bool) -> None:
    data = os.urandom(size)
    (tmp_path / "f").write_bytes(data)
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    try:
        assert read_at_most(fd, 1 << 20, os.fstat(fd).st_size, regular=regular) == data
    finally:
        os.close(fd)


def test_a_file_that_grew_since_its_stat_is_still_read_whole(tmp_path: Path) -> None:
    (tmp_path / "f").write_bytes(b"x" * 200_000)
    fd = os.open(tmp_path / "f", os.O_RDONLY)
    try:
        assert read_at_most(fd, 1 << 20, expected=10, regular=True) == b"x" * 200_000
    finally:
        os.close(fd)


@pytest.mark.parametrize("expected", [0, 100])
def test_an_endless_stream_stops_one_byte_over_the_limit(expected: int) -> None:
    read_end, write_end = os.pipe()
    limit = 300_000

    def feed() -> None:
        try:
            while True:
                os.write(write_end, b"z" * 65536)
        except BrokenPipeError:
            return

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    try:
        assert len(read_at_most(read_end, limit, expected)) == limit + 1
    finally:
        os.close(read_end)
        feeder.join(timeout=10)
        os.close(write_end)


def test_a_json_object_file_is_read_whole_or_ignored(tmp_path: Path) -> None:
    from expq._fs import read_json_object

    big = {"values": list(range(60_000))}  # about 400 KB: more than one first read
    (tmp_path / "big.json").write_text(json.dumps(big))
    (tmp_path / "torn.json").write_text(json.dumps(big)[:-10])
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "folder.json").mkdir()
    assert read_json_object(tmp_path / "big.json") == big
    for name in ("torn.json", "list.json", "folder.json", "absent.json"):
        assert read_json_object(tmp_path / name) is None


def test_a_json_object_file_that_is_a_fifo_or_too_large_is_ignored(tmp_path: Path) -> None:
    from expq._fs import read_json_object

    os.mkfifo(tmp_path / "result.json")  # a job may leave anything in its run directory
    found: list[object] = []
    reader = threading.Thread(target=lambda: found.append(read_json_object(tmp_path / "result.json")), daemon=True)
    reader.start()
    reader.join(timeout=20)
    assert found == [None], "reading a FIFO waited for a writer"
    (tmp_path / "huge.json").write_text(json.dumps({"pad": "x" * (16 << 20)}))  # valid, but no record is this big
    assert read_json_object(tmp_path / "huge.json") is None


def test_a_run_file_is_read_up_to_its_limit(tmp_path: Path) -> None:
    from expq.launcher.run_files import LIMIT, read_json

    within = {"pad": "x" * (LIMIT - 20)}
    (tmp_path / "within.json").write_text(json.dumps(within))
    (tmp_path / "over.json").write_text(json.dumps({"pad": "x" * LIMIT}))
    assert read_json(tmp_path / "within.json") == within
    with pytest.raises(OSError, match="larger than 1 MiB") as raised:
        read_json(tmp_path / "over.json")
    assert raised.value.errno == errno.EFBIG
