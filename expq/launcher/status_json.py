"""The bytes of ``status --json``: a header with the counts, then one compact job per line, so the
output stays greppable and 100,000 jobs encode in C (``indent`` would switch ``json`` to its
pure-Python encoder, ten times slower). Written as blocks of lines come, so memory holds a few
blocks rather than every job."""
from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any, BinaryIO

__all__ = ["encode_record", "encode_string", "encode_number", "slot", "LineTemplate", "job_lines",
           "write_status_json"]


def _compact_encoder() -> Callable[[Any], str]:
    """``json.dumps(value, separators=(",", ":"))`` of JSON-ready trees, with the C encoder built once:
    ``JSONEncoder.encode`` builds it (and a closure) again on every call, 10-25% of the cost of a record."""
    plain = json.JSONEncoder(separators=(",", ":"), check_circular=False)  # a record is a tree
    try:
        from _json import make_encoder
    except ImportError:  # an interpreter without json's C part
        return plain.encode
    encode = make_encoder(None, plain.default, json.encoder.encode_basestring_ascii, None, ":", ",", False, False, True)
    return lambda value: "".join(encode(value, 0))


encode_record = _compact_encoder()
encode_string: Callable[[str], str] = json.encoder.encode_basestring_ascii  # what encode_record writes for a str


def encode_number(value: int | float) -> str:
    """A number as ``encode_record`` writes it: its ``repr``, but NaN and the infinities as ``json``
    spells them (``NaN``, ``Infinity``)."""
    return repr(value) if type(value) is int or math.isfinite(value) else encode_record(value)


def slot(number: int) -> str:
    """The marker of a ``LineTemplate``'s hole, a string no real value holds."""
    return f"\0slot{number}\0"


_SLOT = re.compile(r'"\\u0000slot([0-9]+)\\u0000"')


class LineTemplate:
    """The encoded line of records that differ only in some values, with holes where those go.

    ``status --json`` of a sweep writes 100,000 records alike but for 16 values; encoding those values
    alone into a template costs half of building and encoding each record (``_Unstarted``). The
    template is cut from a record whose varying values are the markers of ``slot``, so its layout
    stays the one of the records it stands for."""

    def __init__(self, record: dict[str, Any], slots: int) -> None:
        pieces = _SLOT.split(encode_record(record))
        order = [int(number) for number in pieces[1::2]]
        if sorted(order) != list(range(slots)):
            raise ValueError(f"a template needs each of its {slots} slots once, got {order}")
        self._format = "%s".join(text.replace("%", "%%") for text in pieces[0::2])
        self._order = order

    def fill(self, values: Sequence[str]) -> str:
        """The line, from the encoded values of the slots, by slot number."""
        return self._format % tuple([values[number] for number in self._order])


def job_lines(lines: Iterable[str]) -> bytes:
    """A block of encoded jobs, one per line."""
    return ",\n".join(lines).encode()


def write_status_json(out: BinaryIO, counts: dict[str, int], blocks: Iterable[bytes]) -> None:
    """The whole output: the blocks of ``job_lines``, in order."""
    out.write(f'{{"version":1,"counts":{encode_record(counts)},"jobs":['.encode())
    separator = b"\n"
    for block in blocks:
        if block:
            out.write(separator + block)
            separator = b",\n"
    out.write(b"\n]}\n" if separator != b"\n" else b"]}\n")
