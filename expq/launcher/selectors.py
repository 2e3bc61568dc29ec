"""argparse value types for naming many jobs and labels at once: ``--after 3,4,5``, ``3-40``, tags.

Each rejects a bad value with one line naming it (exit 2 before anything is written). Numbers are
ASCII digits only, as everywhere in the CLI.
"""
from __future__ import annotations

import argparse
import re

__all__ = ["job_ids", "tag", "MAX_RANGE"]

MAX_RANGE = 100_000  # `--after 1-99999999` is a typo, not a dependency on a hundred million jobs
_PART = re.compile(r"([0-9]{1,12})(?:-([0-9]{1,12}))?")


def job_ids(text: str) -> tuple[int, ...]:
    """``12``, ``3,4,5``, ``3-40`` or a mix (``1-3,7``): the ids, in the order written, without repeats."""
    ids: dict[int, None] = {}
    for part in text.split(","):
        match = _PART.fullmatch(part.strip())
        if match is None:
            raise argparse.ArgumentTypeError(f"{text!r} is not a job id, a list (3,4,5) or a range (3-40)")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        if first < 1 or last < first:
            raise argparse.ArgumentTypeError(f"{part.strip()!r} is not a range of job ids: expected FIRST-LAST "
                                             "with 1 <= FIRST <= LAST")
        if last - first >= MAX_RANGE or len(ids) + last - first >= MAX_RANGE:
            raise argparse.ArgumentTypeError(f"{text!r} names more than {MAX_RANGE:,} jobs")
        ids.update(dict.fromkeys(range(first, last + 1)))
    return tuple(ids)


def tag(text: str) -> str:
    """A tag as ``--tag`` and ``status --tag`` take it (see ``expq.queue.labels.check_tag``)."""
    from expq.errors import InputError
    from expq.queue.labels import check_tag

    try:
        return check_tag(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
