"""Which config keys a job's program read, so a mistyped key (``--sweep lrate=...`` for ``lr``) is
caught instead of silently running every job with the default.

Reads are seen where the experiment API hands out config: a captured function's injected
parameters (``@exp.capture``, ``@exp.command``), and lookups in ``exp.config`` (``TrackedConfig``
records ``cfg["lr"]``, ``cfg.get("lr")``, and reading every key through iteration, ``items()``,
``dict(cfg)`` or ``**cfg``). Inside a queued job each ``Experiment`` writes the dotted keys it saw
read into ``<run dir>/config-reads/<pid>-<n>.json`` when it closes; the worker unites them with
the keys the command's placeholders read and warns about the rest (``expq.worker.config_check``,
which reads the files back without importing this package). A program that
reads ``EXPQ_CONFIG`` by itself is invisible here: with no reads file, there is no warning.
"""
from __future__ import annotations

import itertools
import json
import os
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from expq._fs import atomic_write, ensure_dir
from expq.contract import CONFIG_READS_DIR

__all__ = ["READS_DIR", "ReadLog", "TrackedConfig"]

READS_DIR = CONFIG_READS_DIR
_counter = itertools.count(1)


class ReadLog:
    """The dotted config keys read in this process by one experiment."""

    def __init__(self) -> None:
        self.keys: set[str] = set()

    def mark(self, key: str) -> None:
        self.keys.add(key)

    def mark_all(self, prefix: str, keys: Iterable[Any]) -> None:
        self.keys.update(f"{prefix}{key}" for key in keys)

    def save(self, run_dir: Path) -> None:
        """Write the keys read into the run directory (one file per experiment and process)."""
        folder = ensure_dir(run_dir / READS_DIR)
        atomic_write(folder / f"{os.getpid()}-{next(_counter)}.json",
                     json.dumps({"version": 1, "read": sorted(self.keys)}), durable=False)


class TrackedConfig(dict):
    """A plain ``dict`` (a copy of the config) that records which keys are read through it.

    Overriding ``__iter__`` also makes ``dict(cfg)`` and ``f(**cfg)`` go through ``keys`` and
    ``__getitem__`` instead of copying the storage directly, so those reads are seen too. YAML's
    dumpers learn to write it as the mapping it is (``yaml.safe_dump(exp.config)`` must keep working).
    """

    def __init__(self, data: Mapping[str, Any], log: ReadLog, prefix: str = "") -> None:
        _teach_yaml()
        super().__init__(data)
        self._log = log
        self._prefix = prefix

    def __getitem__(self, key: Any) -> Any:
        value = super().__getitem__(key)
        if isinstance(value, TrackedConfig):
            return value
        full = f"{self._prefix}{key}"
        if isinstance(value, dict) and value:
            # its own keys are recorded as they are read; kept in place, so that changes made to it
            # stay visible through this copy, as they would in a plain dict
            child = TrackedConfig(value, self._log, f"{full}.")
            super().__setitem__(key, child)
            return child
        self._log.mark(full)
        return value

    def get(self, key: Any, default: Any = None) -> Any:
        return self[key] if key in self else default

    def __iter__(self) -> Iterator[Any]:
        self._log.mark_all(self._prefix, super().keys())
        return super().__iter__()

    def items(self) -> Any:
        self._log.mark_all(self._prefix, super().keys())
        return super().items()

    def values(self) -> Any:
        self._log.mark_all(self._prefix, super().keys())
        return super().values()

    def pop(self, key: Any, *default: Any) -> Any:
        if key in self:
            self._log.mark(f"{self._prefix}{key}")
        return super().pop(key, *default)

    def copy(self) -> dict[Any, Any]:  # a copy is read later, unseen: count every key as read now
        self._log.mark_all(self._prefix, super().keys())
        return dict(super().items())

    def __reduce__(self) -> Any:  # pickles and deep-copies as a plain dict; every key counts as read
        return dict, (self.copy(),)


_yaml_taught: list[bool] = []


def _teach_yaml() -> None:
    """Register ``TrackedConfig`` with PyYAML's representers, once per process: the safe dumpers look
    types up exactly and would refuse a dict subclass, the others would tag it as a Python object."""
    if _yaml_taught:
        return
    _yaml_taught.append(True)
    import yaml
    from yaml.representer import Representer, SafeRepresenter

    classes: list[Any] = [SafeRepresenter, Representer, yaml.SafeDumper, yaml.Dumper]
    classes += [c for c in (getattr(yaml, "CSafeDumper", None), getattr(yaml, "CDumper", None)) if c is not None]
    for cls in classes:
        cls.add_representer(TrackedConfig, SafeRepresenter.represent_dict)
