"""The bytes of ``status --json``: a header with the counts, then one compact job per line, so the
output stays greppable and 100,000 jobs encode in C (``indent`` would switch ``json`` to its
pure-Python encoder, ten times slower). Written as blocks of lines come, so memory holds a few
blocks rather than every job."""
from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, BinaryIO

__all__ = ["encode_record", "job_lines", "write_status_json"]


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
