"""Config for the experiment API: the one dialect of ``expq.config``, plus how layers stack.

Precedence, lowest first: ``add_config`` on the experiment, the queued job's config
(``EXPQ_CONFIG``), the run's overrides (``exp.run(fn, **overrides)`` and ``add_config`` inside
that run), and finally arguments passed explicitly to a captured function.

Files are read by ``expq.config.load_config_file``, exactly as ``expq submit --config`` reads
them (``lr: 1e-3`` is a float, dates stay strings); a mapping given in Python may use dotted
keys (``{"model.lr": 0.1}``) and may hold any Python object.
"""
from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from expq.config import MISSING, deep_merge, expand_dotted, flatten, get_dotted, load_config_file

__all__ = ["deep_merge", "load_config", "expand_dotted", "flatten", "lookup", "MISSING"]


def load_config(source: Mapping[str, Any] | str | os.PathLike[str]) -> dict[str, Any]:
    """A config from a mapping (dotted keys expanded) or from a YAML/JSON file.

    Raises:
        InputError: the file is missing, unreadable, does not parse or is not a mapping.
    """
    if isinstance(source, Mapping):
        return expand_dotted(source)
    return load_config_file(source)


def lookup(config: Mapping[str, Any], dotted: str) -> Any:
    """The value at ``a.b.c`` in nested mappings, or ``MISSING``."""
    return get_dotted(config, dotted, MISSING)
