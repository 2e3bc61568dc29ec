"""JobSpec: explicit, versioned serialisation that refuses what it does not know."""
from __future__ import annotations

import json

import pytest

from expq.errors import InputError
from expq.queue.spec import SPEC_VERSION, JobSpec, format_size, parse_size


def make_spec(**changes: object) -> JobSpec:
    fields = dict(id=7, experiment="exp", name="lr=0.1", command=("python", "train.py", "--lr", "0.1"),
                  run_dir="experiments/exp/7-lr=0.1", cwd="/tmp", submitted_at=1700000000.5,
                  config={"lr": 0.1, "model": {"layers": [1, 2]}, "flag": True, "none": None},
                  gpus=2, priority=-3, retries=1, timeout=30.0, after=(3, 4), env={"A": "1"}, user="me")
    fields.update(changes)
    return JobSpec(**fields)  # type: ignore[arg-type]


def test_round_trip_through_json_keeps_every_field() -> None:
    spec = make_spec()
    assert JobSpec.from_json(spec.to_json()) == spec
    assert JobSpec.from_dict(spec.to_dict()) == spec


def test_to_dict_starts_with_the_version_and_uses_lists() -> None:
    data = make_spec().to_dict()
    assert next(iter(data)) == "version" and data["version"] == SPEC_VERSION
    assert data["command"] == ["python", "train.py", "--lr", "0.1"] and data["after"] == [3, 4]
    json.dumps(data)  # JSON-ready


def test_optional_fields_default_when_absent() -> None:
    data = make_spec().to_dict()
    for key in ("config", "gpus", "priority", "retries", "timeout", "after", "env", "user"):
        del data[key]
    spec = JobSpec.from_dict(data)
    assert (spec.gpus, spec.after, spec.config, spec.timeout) == (0, (), {}, None)


def test_unknown_keys_are_named() -> None:
    data = {**make_spec().to_dict(), "colour": "red", "blob": 1}
    with pytest.raises(InputError, match=r"^invalid job spec: unknown keys blob, colour$"):
        JobSpec.from_dict(data)


def test_missing_keys_are_named() -> None:
    data = make_spec().to_dict()
    del data["cwd"], data["command"]
    with pytest.raises(InputError, match=r"^invalid job spec: missing keys command, cwd$"):
        JobSpec.from_dict(data)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("gpus", "2", "gpus has type str"),
    ("gpus", True, "gpus has type bool"),
    ("command", [], "command must be a non-empty list of strings"),
    ("command", ["ok", 3], "command must be a non-empty list of strings"),
    ("after", ["3"], "after must list job ids"),
    ("config", [1], "config has type list"),
])
def test_mistyped_fields_are_refused(key: str, value: object, message: str) -> None:
    data = {**make_spec().to_dict(), key: value}
    with pytest.raises(InputError, match=message):
        JobSpec.from_dict(data)


@pytest.mark.parametrize("version", [None, 0, 2, "1"])
def test_other_versions_are_refused(version: object) -> None:
    data = {**make_spec().to_dict(), "version": version}
    with pytest.raises(InputError, match="unsupported version"):
        JobSpec.from_dict(data)


@pytest.mark.parametrize("raw", [b"", b"{", b"[1, 2]", b'{"version": 1', b"\xff\xfe"])
def test_torn_or_foreign_files_are_refused(raw: bytes) -> None:
    with pytest.raises(InputError, match="^invalid job spec"):
        JobSpec.from_json(raw)


def test_gpu_mem_is_kept_in_bytes_and_absent_when_not_asked_for() -> None:
    spec = make_spec(gpu_mem=12 << 30)
    assert JobSpec.from_json(spec.to_json()) == spec and spec.to_dict()["gpu_mem"] == 12 << 30
    assert "gpu_mem" not in make_spec().to_dict()  # specs without it read as before


@pytest.mark.parametrize(("changes", "message"), [
    ({"gpu_mem": 0}, "gpu_mem 0 needs a positive size and gpus >= 1"),
    ({"gpu_mem": 1 << 30, "gpus": 0}, "gpu_mem 1073741824 needs a positive size and gpus >= 1"),
    ({"gpu_mem": "12G"}, "gpu_mem has type str"),
    ({"gpu_mem": True}, "gpu_mem has type bool"),
])
def test_gpu_mem_contract(changes: dict[str, object], message: str) -> None:
    data = make_spec().to_dict() | changes
    with pytest.raises(InputError, match=message):
        JobSpec.from_dict(data)


@pytest.mark.parametrize(("text", "size"), [("12G", 12 << 30), ("1.5GiB", 3 << 29), ("512m", 512 << 20),
                                            ("2T", 2 << 40), ("64KB", 64 << 10)])
def test_sizes_are_binary(text: str, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["12", "G", "-1G", "12X", "0G", "1e3G", ""])
def test_sizes_need_a_positive_number_and_a_unit(text: str) -> None:
    with pytest.raises(InputError, match="expected a number and a binary unit, like 12G"):
        parse_size(text)


def test_sizes_print_in_the_largest_unit() -> None:
    assert [format_size(n) for n in (12 << 30, int(7.1 * (1 << 30)), 500 << 20, 80 << 30, 1023, 150 << 30)] == [
        "12 GiB", "7.1 GiB", "500 MiB", "80 GiB", "1023 B", "150 GiB"]
