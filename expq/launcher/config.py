"""What ``expq submit --config/--set`` uses to build a job's config: the one dialect of ``expq.config``.

The loader, ``deep_merge`` and the dotted-key helpers live in ``expq.config`` so that a job, the
experiment API and the results reader type values exactly as the CLI does; this module keeps the
launcher's import path for them. Every function raises ``InputError`` before anything is written.
"""
from __future__ import annotations

from expq.config import (
    MISSING,
    deep_merge,
    get_dotted,
    load_config_files,
    parse_set,
    parse_value,
    resolve_config,
    set_dotted,
    show,
    split_key,
)

__all__ = ["MISSING", "deep_merge", "get_dotted", "load_config_files", "parse_set", "parse_value",
           "resolve_config", "set_dotted", "show", "split_key"]
