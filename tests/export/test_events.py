"""The batch event encoder writes what TensorBoard's own protos and RecordWriter write."""
from __future__ import annotations

import io
import math
import os

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.summary.writer.record_writer import RecordWriter

from expq.experiment import events

STEPS = [0, 1, 127, 128, 16_383, 16_384, 2**40, -1, -(2**40)]
VALUES = [0.4, -0.0, math.nan, math.inf, -math.inf, 1e300, -2.5, 3.0, 1e-45]
TIMES = [1_700_000_000.125 + i for i in range(len(STEPS))]


def _records(data: bytes) -> list[bytes]:
    """Payloads of a TFRecord stream, checking each length and CRC with TensorBoard's framing."""
    payloads, at = [], 0
    while at < len(data):
        (length,) = np.frombuffer(data[at:at + 8], dtype="<u8")
        payload = data[at + 12:at + 12 + int(length)]
        expected = io.BytesIO()
        RecordWriter(expected).write(payload)
        assert data[at:at + 16 + int(length)] == expected.getvalue()
        payloads.append(payload)
        at += 16 + int(length)
    return payloads


@pytest.mark.parametrize("payload", [b"", b"x", bytes(range(256)) * 3])
def test_frame_is_byte_for_byte_tensorboards_record_writer(payload):
    expected = io.BytesIO()
    RecordWriter(expected).write(payload)
    assert events.frame(payload) == expected.getvalue()


@pytest.mark.parametrize("tag", ["loss", "acc/val", "ü" * 70])
def test_scalar_records_decode_to_the_events_tensorboards_protos_describe(tag):
    payloads = _records(events.scalar_records(tag, STEPS, VALUES, TIMES))
    assert len(payloads) == len(STEPS)
    for payload, step, value, wall in zip(payloads, STEPS, VALUES, TIMES):
        event = event_pb2.Event.FromString(payload)
        with np.errstate(over="ignore"):
            single = np.float32(value)
        expected = event_pb2.Event(wall_time=wall, step=step, summary=summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag=tag, simple_value=single)]))
        if math.isnan(value):
            assert math.isnan(event.summary.value[0].simple_value)
            expected.summary.value[0].simple_value = event.summary.value[0].simple_value
        assert event == expected


def test_event_accumulator_reads_back_every_point_across_batches(tmp_path, monkeypatch):
    monkeypatch.setattr(events, "_BATCH", 1000)
    count = 2_500  # two whole internal batches and a part
    steps = np.arange(count)
    values = np.linspace(-1, 1, count)
    times = 1_700_000_000 + steps * 0.001
    name = events.event_file_name("test", 1_700_000_000)
    with open(tmp_path / name, "wb") as handle:
        handle.write(events.file_version_record(1_700_000_000.0))
        handle.write(events.scalar_records("loss", steps, values, times))
    reader = EventAccumulator(os.fspath(tmp_path), size_guidance={"scalars": 0})
    reader.Reload()
    points = reader.Scalars("loss")
    assert [p.step for p in points] == steps.tolist()
    assert np.array_equal(np.array([p.value for p in points], dtype=np.float32), values.astype(np.float32))
    assert np.allclose([p.wall_time for p in points], times, rtol=0, atol=1e-6)


def test_an_empty_batch_is_no_bytes():
    assert events.scalar_records("loss", [], [], []) == b""
