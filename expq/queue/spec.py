"""The job spec: what the user asked for, frozen once queued, serialised explicitly as JSON."""
from __future__ import annotations

import itertools
import json
import re
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from expq._fs import check_name
from expq.contract import is_reserved_var
from expq.errors import InputError

__all__ = ["JobSpec", "check_spec", "SPEC_VERSION", "MAX_PRIORITY", "expected_run_dir", "parse_size", "format_size"]

SPEC_VERSION = 1
MAX_PRIORITY = 9999


@dataclass(frozen=True)
class JobSpec:
    """One queued job. ``run_dir`` is relative to the expq root, so a root can be moved or shared."""

    id: int
    experiment: str
    name: str
    command: tuple[str, ...]
    run_dir: str
    cwd: str
    submitted_at: float
    config: dict[str, Any] = field(default_factory=dict)
    gpus: int = 0
    priority: int = 0
    retries: int = 0
    timeout: float | None = None
    after: tuple[int, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    user: str = ""
    gpu_mem: int | None = None  # bytes of GPU memory the job needs on each of its GPUs; None: whole GPUs
    # ``submit --skip-existing`` finds earlier jobs by this hash of experiment, command and config
    fingerprint: str = ""
    # config keys the command's placeholders read, and whether unread keys fail the job (``--strict``)
    placeholders: tuple[str, ...] = ()
    strict: bool = False

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with the format version first."""
        data: dict[str, Any] = {"version": SPEC_VERSION}
        for name in _FIELD_NAMES:  # no deep copy (specs are read-only) and no fields() call per spec
            data[name] = getattr(self, name)
        data["command"] = list(self.command)
        data["after"] = list(self.after)
        data["placeholders"] = list(self.placeholders)
        if self.gpu_mem is None:  # absent unless asked for: specs without it stay what older readers accept
            del data["gpu_mem"]
        return data

    def to_json(self) -> bytes:
        return _ENCODER.encode(self.to_dict()).encode()

    @classmethod
    def from_dict(cls, data: Any) -> JobSpec:
        """Rebuild a spec, rejecting unknown, missing or mistyped fields by name.

        Raises:
            InputError: the dict is not a valid version-1 spec.
        """
        check_spec(data)
        values = {key: value for key, value in data.items() if key != "version"}
        values["command"] = tuple(values["command"])
        values["after"] = tuple(values.get("after", ()))
        values["placeholders"] = tuple(values.get("placeholders", ()))
        return cls(**values)

    @classmethod
    def from_json(cls, raw: bytes | str) -> JobSpec:
        """Parse a spec file's content.

        Raises:
            InputError: not JSON, or not a valid spec.
        """
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise InputError(f"invalid job spec: not JSON ({exc})") from None
        except RecursionError:
            raise InputError("invalid job spec: JSON nested too deeply") from None
        return cls.from_dict(data)


def check_spec(data: Any) -> bool:
    """Refuse what ``JobSpec.from_dict`` refuses, reading ``data`` without copying or building anything:
    ``status --json`` checks 100,000 parsed specs and then uses them as the dicts they are.

    Returns:
        Whether ``data`` is whole: every key ``to_dict`` writes, in its order (a spec file of expq).

    Raises:
        InputError: ``data`` is not a valid version-1 spec (the first problem found, by name).
    """
    if not isinstance(data, dict):
        raise InputError(f"invalid job spec: expected a JSON object, got {type(data).__name__}")
    version = data.get("version")
    if version != SPEC_VERSION:
        raise InputError(f"invalid job spec: unsupported version {version!r} (expected {SPEC_VERSION})")
    whole = tuple(map(type, data.values())) in _WRITTEN_SHAPES.get(tuple(data), _NO_SHAPES)
    if not whole:
        _check_keys(data)
        _check_types(data)
    _check_items(data)
    _check_contract(data)
    return whole


def expected_run_dir(job_id: int, experiment: str, name: str) -> str:
    """The run directory a job must have, relative to the root: a spec cannot point anywhere else."""
    return f"experiments/{experiment}/{job_id}-{name}"


_ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INFINITY = float("inf")


_ENCODER = json.JSONEncoder(separators=(",", ":"))  # built once: json.dumps(...) builds one per call
_FIELD_NAMES = tuple(f.name for f in fields(JobSpec))
_ALLOWED = frozenset(_FIELD_NAMES) | {"version"}  # computed once: status --json checks 100,000 specs
_REQUIRED = frozenset(f.name for f in fields(JobSpec) if f.default is MISSING and f.default_factory is MISSING)

_TYPES: dict[str, tuple[type, ...]] = {
    "id": (int,), "experiment": (str,), "name": (str,), "command": (list, tuple), "run_dir": (str,),
    "cwd": (str,), "submitted_at": (int, float), "config": (dict,), "gpus": (int,), "priority": (int,),
    "retries": (int,), "timeout": (int, float, type(None)), "after": (list, tuple), "env": (dict,), "user": (str,),
    "fingerprint": (str,), "placeholders": (list, tuple), "strict": (bool,),
    "gpu_mem": (int, type(None)),
}


# The exact types of the values ``_check_types`` accepts, as JSON gives them (no subclasses).
_EXACT_TYPES = {key: frozenset(kinds) - ({bool} if key != "strict" else set()) for key, kinds in _TYPES.items()}


def _written_shapes() -> dict[tuple[str, ...], frozenset[tuple[type, ...]]]:
    """The keys of a spec as ``to_dict`` writes them, in order (``gpu_mem`` only when set), and every
    combination of exact value types ``_check_keys`` and ``_check_types`` accept: a parsed spec file
    whose keys and types are one of these passes both, so checking it takes one lookup."""
    written = ("version", *_FIELD_NAMES)
    kinds = {"version": frozenset({int}), **_EXACT_TYPES}
    return {keys: frozenset(itertools.product(*(kinds[key] for key in keys)))
            for keys in (written, tuple(key for key in written if key != "gpu_mem"))}


_WRITTEN_SHAPES = _written_shapes()
_NO_SHAPES: frozenset[tuple[type, ...]] = frozenset()


def _check_keys(data: dict[str, Any]) -> None:
    if not _ALLOWED.issuperset(data):
        raise InputError(f"invalid job spec: unknown keys {', '.join(sorted(data.keys() - _ALLOWED))}")
    if not data.keys() >= _REQUIRED:
        raise InputError(f"invalid job spec: missing keys {', '.join(sorted(_REQUIRED - data.keys()))}")


def _check_types(data: dict[str, Any]) -> None:
    for key, value in data.items():
        if key != "version" and (not isinstance(value, _TYPES[key]) or (isinstance(value, bool) and key != "strict")):
            raise InputError(f"invalid job spec: {key} has type {type(value).__name__}")  # the version: by value


def _check_items(data: dict[str, Any]) -> None:
    """The items of the lists, which their type alone does not say."""
    if not data["command"] or not all(isinstance(a, str) for a in data["command"]):
        raise InputError("invalid job spec: command must be a non-empty list of strings")
    after = data.get("after")
    if after and not all(isinstance(a, int) and not isinstance(a, bool) for a in after):
        raise InputError("invalid job spec: after must list job ids")
    placeholders = data.get("placeholders")
    if placeholders and not all(isinstance(k, str) for k in placeholders):
        raise InputError("invalid job spec: placeholders must list config keys")


def _check_contract(data: dict[str, Any]) -> None:
    """What a well-typed spec must also satisfy before a worker may act on it (a spec file is input)."""
    job_id, experiment, name, cwd = data["id"], data["experiment"], data["name"], data["cwd"]
    if job_id < 1:
        raise InputError(f"invalid job spec: id {job_id} (ids start at 1)")
    if not -MAX_PRIORITY <= data.get("priority", 0) <= MAX_PRIORITY:
        raise InputError(f"invalid job spec: priority {data['priority']} outside -{MAX_PRIORITY}..{MAX_PRIORITY}")
    gpus = data.get("gpus", 0)
    if gpus < 0 or data.get("retries", 0) < 0:
        raise InputError(f"invalid job spec: negative {'gpus' if gpus < 0 else 'retries'}")
    gpu_mem = data.get("gpu_mem")
    if gpu_mem is not None and (gpu_mem <= 0 or gpus < 1):
        raise InputError(f"invalid job spec: gpu_mem {gpu_mem!r} needs a positive size and gpus >= 1")
    timeout = data.get("timeout")
    if timeout is not None and not 0 < timeout < _INFINITY:
        raise InputError(f"invalid job spec: timeout {timeout!r} is not a positive number of seconds")
    after = data.get("after")
    if after and any(dep < 1 or dep == job_id for dep in after):
        raise InputError(f"invalid job spec: after {list(after)} names job {job_id} itself or an id < 1")
    try:
        check_name("experiment", experiment)
        check_name("run", name)
    except InputError as exc:
        raise InputError(f"invalid job spec: {exc}") from None
    if data["run_dir"] != expected_run_dir(job_id, experiment, name):
        raise InputError(f"invalid job spec: run_dir {data['run_dir']!r} is not "
                         f"{expected_run_dir(job_id, experiment, name)!r}")
    if not cwd.startswith("/"):  # os.path.isabs on POSIX
        raise InputError(f"invalid job spec: cwd {cwd!r} is not an absolute path")
    if "\0" in cwd or "\0" in "".join(data["command"]):  # one join: the arguments are strings
        raise InputError("invalid job spec: NUL byte in the command or cwd")
    env = data.get("env")
    for key, value in env.items() if env else ():
        if not isinstance(value, str) or not _ENV_KEY.fullmatch(key) or "\0" in value:
            raise InputError(f"invalid job spec: bad environment variable {key!r}")
        if is_reserved_var(key):
            raise InputError(f"invalid job spec: environment variable {key} is set by the worker and cannot be overridden")


_SIZE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([KMGT])(?:i?B)?", re.IGNORECASE)
_UNITS = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str) -> int:
    """``12G``, ``1.5GiB``, ``512M``: binary units K/M/G/T (a bare number is refused: bytes or GiB?).

    Raises:
        InputError: not a positive size with a unit.
    """
    match = _SIZE.fullmatch(text.strip())
    size = int(float(match.group(1)) * _UNITS[match.group(2).upper()]) if match else 0
    if size <= 0:
        raise InputError(f"invalid size {text!r}: expected a number and a binary unit, like 12G, 1.5G or 512M")
    return size


def format_size(size: int) -> str:
    """``12 GiB``, ``7.1 GiB``, ``500 MiB``: the unit of the largest power of 1024 it reaches."""
    for unit, factor in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor:
            value = size / factor
            return f"{value:.0f} {unit}" if value >= 100 or value == int(value) else f"{value:.1f} {unit}"
    return f"{size} B"
