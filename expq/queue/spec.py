"""The job spec: what the user asked for, frozen once queued, serialised explicitly as JSON."""
from __future__ import annotations

import json
from dataclasses import MISSING, dataclass, field, fields
from typing import Any

from expq.errors import InputError

__all__ = ["JobSpec", "SPEC_VERSION", "MAX_PRIORITY"]

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

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with the format version first."""
        data: dict[str, Any] = {"version": SPEC_VERSION}
        for name in _FIELD_NAMES:  # no deep copy (specs are read-only) and no fields() call per spec
            data[name] = getattr(self, name)
        data["command"] = list(self.command)
        data["after"] = list(self.after)
        return data

    def to_json(self) -> bytes:
        return _ENCODER.encode(self.to_dict()).encode()

    @classmethod
    def from_dict(cls, data: Any) -> JobSpec:
        """Rebuild a spec, rejecting unknown, missing or mistyped fields by name.

        Raises:
            InputError: the dict is not a valid version-1 spec.
        """
        if not isinstance(data, dict):
            raise InputError(f"invalid job spec: expected a JSON object, got {type(data).__name__}")
        data = dict(data)
        version = data.pop("version", None)
        if version != SPEC_VERSION:
            raise InputError(f"invalid job spec: unsupported version {version!r} (expected {SPEC_VERSION})")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise InputError(f"invalid job spec: unknown keys {', '.join(unknown)}")
        required = {f.name for f in fields(cls) if f.default is MISSING and f.default_factory is MISSING}
        missing = sorted(required - set(data))
        if missing:
            raise InputError(f"invalid job spec: missing keys {', '.join(missing)}")
        _check_types(data)
        data["command"] = tuple(data["command"])
        data["after"] = tuple(data.get("after", ()))
        return cls(**data)

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
        return cls.from_dict(data)


_ENCODER = json.JSONEncoder(separators=(",", ":"))  # built once: json.dumps(...) builds one per call
_FIELD_NAMES = tuple(f.name for f in fields(JobSpec))

_TYPES: dict[str, tuple[type, ...]] = {
    "id": (int,), "experiment": (str,), "name": (str,), "command": (list, tuple), "run_dir": (str,),
    "cwd": (str,), "submitted_at": (int, float), "config": (dict,), "gpus": (int,), "priority": (int,),
    "retries": (int,), "timeout": (int, float, type(None)), "after": (list, tuple), "env": (dict,), "user": (str,),
}


def _check_types(data: dict[str, Any]) -> None:
    for key, value in data.items():
        if not isinstance(value, _TYPES[key]) or isinstance(value, bool):
            raise InputError(f"invalid job spec: {key} has type {type(value).__name__}")
    if not data["command"] or not all(isinstance(a, str) for a in data["command"]):
        raise InputError("invalid job spec: command must be a non-empty list of strings")
    if not all(isinstance(a, int) for a in data.get("after", ())):
        raise InputError("invalid job spec: after must list job ids")
