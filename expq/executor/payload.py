"""The two files that carry a Python call into a job and its outcome back out of it.

``call.pkl`` holds the function and its arguments, ``outcome.pkl`` the return value or the
exception. Each is a plain pickle of a small header (plain data: always readable, whatever code
is importable) followed by a cloudpickle of the payload, so a reader learns what a file holds
before it has to import the user's code, and an exception whose class cannot be imported here is
still described by its header.

A pickle is code. Every reader first checks that the file and its run directory belong to this
user and are writable by nobody else, the rule the queue applies to specs; the writer makes the
run directory 0700 and the files 0600.
"""
from __future__ import annotations

import functools
import io
import os
import pickle
import stat
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from expq._fs import open_regular
from expq.contract import CALL_PKL, OUTCOME_PKL
from expq.errors import InsecureQueue

__all__ = ["CALL_FILE", "OUTCOME_FILE", "Call", "Outcome", "dump_call", "read_call", "write_value",
           "write_error", "read_outcome", "make_run_dir", "write_private", "check_trusted", "qualified_name",
           "submitter_path"]

CALL_FILE = CALL_PKL
OUTCOME_FILE = OUTCOME_PKL
FORMAT = 1
_PROTOCOL = pickle.HIGHEST_PROTOCOL


@dataclass(frozen=True)
class Call:
    """A function call to make in a job, and the submitter's ``sys.path`` to find its modules."""

    fn: Callable[..., Any]
    args: tuple[Any, ...] = ()
    kwargs: Mapping[str, Any] = field(default_factory=dict)
    sys_path: tuple[str, ...] = ()


@dataclass(frozen=True)
class Outcome:
    """How one attempt's call ended: ``value`` when ``ok``, else a description of the exception."""

    attempt: int | None
    ok: bool
    value: Any = None
    exc_type: str = ""
    message: str = ""
    traceback: str = ""
    reason: str = ""
    exception: BaseException | None = None


def qualified_name(obj: object) -> str:
    """``module.QualName`` of a function or class, the way people look it up (builtins by name alone).

    A ``functools.partial`` is named after the function it wraps, a callable object after its class.
    """
    while isinstance(obj, functools.partial):
        obj = obj.func
    module = getattr(obj, "__module__", None) or type(obj).__module__
    name = getattr(obj, "__qualname__", None) or type(obj).__qualname__
    return name if module == "builtins" else f"{module}.{name}"


# -- writing ----------------------------------------------------------------------------------

def submitter_path() -> list[str]:
    """The entries of this process's ``sys.path`` that hold the user's code (script folders,
    ``PYTHONPATH``, project sources), absolute: what a job needs to import the modules of functions
    sent by reference. The interpreter's own library and site-packages stay out, so a job run by
    another interpreter (``python=``) never mixes in packages built for this one.
    """
    import site

    installed = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    if site.ENABLE_USER_SITE and site.USER_SITE:
        installed.add(site.USER_SITE)
    roots = tuple(os.path.join(os.path.realpath(p), "") for p in installed)
    entries = [os.path.abspath(p) if p else os.getcwd() for p in sys.path]
    return [p for p in entries if not os.path.join(os.path.realpath(p), "").startswith(roots)]


def dump_call(fn: Callable[..., Any], args: Sequence[Any], kwargs: Mapping[str, Any],
              sys_path: Sequence[str] = ()) -> bytes:
    """``call.pkl``'s bytes. Pickling happens here, before anything is written or queued.

    Raises:
        pickle.PicklingError, TypeError, AttributeError: the function or an argument cannot be pickled.
    """
    import cloudpickle  # the executor extra; only submitting and reading results need it

    buffer = io.BytesIO()
    pickle.dump({"version": FORMAT, "sys_path": list(sys_path)}, buffer, protocol=_PROTOCOL)
    cloudpickle.dump((fn, tuple(args), dict(kwargs)), buffer, protocol=_PROTOCOL)
    return buffer.getvalue()


def make_run_dir(path: str) -> None:
    """Create a job's run directory owner-only, before the job is queued (its parent must exist).

    The umask can only take bits away from 0700, so nobody else ever gets in.
    """
    os.mkdir(path, 0o700)


def write_private(path: str, data: bytes) -> None:
    """Write a new owner-only file (``O_EXCL``: never through a link someone placed there)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with open(fd, "wb") as handle:
        handle.write(data)


def write_value(run_dir: Path, attempt: int | None, value: Any) -> None:
    """Record a return value atomically: a temp file, then a rename, so no reader sees half of it.

    Raises:
        Exception: whatever pickling the value raises (the temp file is removed first).
    """
    pickler = _pickler()

    def payload(handle: IO[bytes]) -> None:
        pickler.dump(value, handle, protocol=_PROTOCOL)

    _write_outcome(run_dir, {"version": FORMAT, "attempt": attempt, "ok": True}, payload)


def write_error(run_dir: Path, attempt: int | None, reason: str, exc_type: str = "", message: str = "",
                traceback: str = "", exception: BaseException | None = None) -> None:
    """Record why the call failed; the exception itself goes along when it can be pickled.

    Works without cloudpickle too: its absence on a node is one of the failures to report.
    """
    pickler = _pickler()
    pickled = b""
    if exception is not None:
        try:
            pickled = pickler.dumps(exception, protocol=_PROTOCOL)
        except Exception:  # noqa: BLE001 - any error of a user's __reduce__: the header alone describes it
            pickled = b""
    header = {"version": FORMAT, "attempt": attempt, "ok": False, "reason": reason, "exc_type": exc_type,
              "message": message, "traceback": traceback}
    _write_outcome(run_dir, header, lambda handle: handle.write(pickled))


def _pickler() -> Any:
    """cloudpickle, else plain pickle: a job whose interpreter lacks cloudpickle can still run a
    function sent by reference and return a plain value, and report its failures either way."""
    try:
        import cloudpickle
    except ImportError:
        return pickle
    return cloudpickle


def _write_outcome(run_dir: Path, header: dict[str, Any], payload: Callable[[IO[bytes]], object]) -> None:
    target = run_dir / OUTCOME_FILE
    tmp = run_dir / f".{OUTCOME_FILE}.{os.getpid()}"
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with open(fd, "wb") as handle:
            pickle.dump(header, handle, protocol=_PROTOCOL)
            payload(handle)
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# -- reading ----------------------------------------------------------------------------------

def check_trusted(path: Path) -> None:
    """Refuse a pickle that another user owns or could have written, or one in such a directory.

    Raises:
        InsecureQueue: naming the file or directory and what is wrong with it.
    """
    for item in (path.parent, path):
        info = os.stat(item)
        if info.st_uid != os.geteuid():
            raise InsecureQueue(item, f"owned by uid {info.st_uid}, not by you (uid {os.geteuid()}); "
                                      "a pickle is code, so only your own files are loaded")
        if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
            raise InsecureQueue(item, f"writable by other users (mode {stat.S_IMODE(info.st_mode):o}); "
                                      f"a pickle is code, so it is not loaded; fix: chmod go-w '{item}'")


def read_call(run_dir: Path) -> Call:
    """Load ``call.pkl``, after putting the submitter's ``sys.path`` entries this process lacks last.

    Raises:
        FileNotFoundError: no call file. InsecureQueue: see ``check_trusted``. Exception: whatever
            unpickling raises (a module missing on this host, another Python version).
    """
    path = run_dir / CALL_FILE
    check_trusted(path)
    with os.fdopen(open_regular(path)[0], "rb") as handle:
        header = pickle.load(handle)
        known = set(sys.path)
        sys.path.extend(p for p in header.get("sys_path", ()) if p not in known)
        fn, args, kwargs = pickle.load(handle)
    return Call(fn, args, kwargs, tuple(header.get("sys_path", ())))


def read_outcome(run_dir: Path) -> Outcome | None:
    """The recorded outcome, or None when there is none (yet).

    Raises:
        InsecureQueue: see ``check_trusted``. Exception: whatever unpickling a return value raises.
    """
    path = run_dir / OUTCOME_FILE
    try:
        check_trusted(path)
        handle = os.fdopen(open_regular(path)[0], "rb")  # a FIFO planted there is refused, not waited on
    except FileNotFoundError:
        return None
    with handle:
        header = pickle.load(handle)
        if header.get("ok"):
            return Outcome(header.get("attempt"), True, value=pickle.load(handle))
        exception = None
        try:
            loaded = pickle.load(handle)
            exception = loaded if isinstance(loaded, BaseException) else None
        except EOFError:
            exception = None  # it could not be pickled: the header describes it
        except Exception:  # noqa: BLE001 - its class may not import here; the header still describes it
            exception = None
        return Outcome(header.get("attempt"), False, exc_type=header.get("exc_type", ""),
                       message=header.get("message", ""), traceback=header.get("traceback", ""),
                       reason=header.get("reason", ""), exception=exception)
