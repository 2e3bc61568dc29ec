"""Writing saved objects into a run's ``files/`` folder: versioned or replaced, never torn.

Every object is first written to a temp file in its final folder. Without ``overwrite`` it is
then hard-linked to ``name.ext``, ``name_1.ext``, ``name_2.ext``...: ``link`` fails if the name
exists, so the version is decided on disk and two processes never get the same one. With
``overwrite`` it is renamed over the old file, so a reader sees the old or the new content.
"""
from __future__ import annotations

import errno
import os
import threading
from pathlib import Path
from typing import Any

from expq.errors import InputError, NotFound
from expq.experiment.savers import SaverRegistry, save_pickle
from expq.experiment.tree import relative_name

__all__ = ["save_object", "load_object", "find_file", "list_files"]

_MAX_VERSIONS = 100_000


def _target(files_dir: Path, name: str, exts: tuple[str, ...]) -> tuple[Path, str, str]:
    """The folder, stem and extension for ``name``: a name ending in an accepted extension keeps it."""
    rel = relative_name("file", name)
    folder = files_dir.joinpath(*rel.parts[:-1])
    stem, dot, ext = rel.name.rpartition(".")
    if dot and stem and ext.lower() in exts:
        return folder, stem, ext
    return folder, rel.name, exts[0]


def save_object(registry: SaverRegistry, files_dir: Path, obj: Any, name: str, overwrite: bool = False) -> Path:
    """Write ``obj`` with the saver its type asks for; return the file written.

    Raises:
        InputError: an unsafe name or a type no saver takes.
    """
    saver = registry.saver_for(obj)
    return write_file(files_dir, name, saver.exts, lambda path: saver.save(obj, path), overwrite)


def save_pickled(files_dir: Path, obj: Any, name: str, overwrite: bool = False) -> Path:
    """The explicit fallback: pickle ``obj`` to ``name.pkl``."""
    return write_file(files_dir, name, ("pkl",), lambda path: save_pickle(obj, path), overwrite)


def write_file(files_dir: Path, name: str, exts: tuple[str, ...], write: Any, overwrite: bool) -> Path:
    """Run ``write(temp_path)`` then publish the temp file under a versioned or replaced name."""
    folder, stem, ext = _target(files_dir, name, exts)
    folder.mkdir(parents=True, exist_ok=True)
    # The temp name ends with the real extension: savers that append one (np.save) leave it alone.
    tmp = folder / f".tmp-{os.getpid()}-{threading.get_ident()}-{stem}.{ext}"
    try:
        write(tmp)
        if overwrite:
            final = folder / f"{stem}.{ext}"
            os.replace(tmp, final)
            return final
        return _publish_versioned(tmp, folder, stem, ext)
    finally:
        if tmp.exists():
            tmp.unlink()


def _publish_versioned(tmp: Path, folder: Path, stem: str, ext: str) -> Path:
    for version in range(_MAX_VERSIONS):
        final = folder / (f"{stem}.{ext}" if version == 0 else f"{stem}_{version}.{ext}")
        try:
            os.link(tmp, final)
        except FileExistsError:
            continue
        except OSError as error:
            if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
                raise
            # No hard links here (some network filesystems): reserve the name, then rename over it.
            try:
                os.close(os.open(final, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
            except FileExistsError:
                continue
            os.replace(tmp, final)
        return final
    raise InputError(f"too many versions of {stem}.{ext} in {folder}")  # pragma: no cover


def find_file(files_dir: Path, name: str) -> Path:
    """The file saved as ``name``: the exact file name, or the one file whose stem is ``name``.

    Raises:
        NotFound: nothing saved under that name.
        InputError: an unsafe name, or several files share the stem (name the extension).
    """
    rel = relative_name("file", name)
    exact = files_dir.joinpath(*rel.parts)
    if exact.is_file():
        return exact
    folder = exact.parent
    matches = sorted(p for p in folder.glob(f"{_glob_escape(rel.name)}.*") if p.is_file() and not p.name.startswith("."))
    matches = [p for p in matches if p.name.rpartition(".")[0] == rel.name]
    if not matches:
        raise NotFound("saved file", f"{name} (in {files_dir})")
    if len(matches) > 1:
        choices = ", ".join(p.name for p in matches)
        raise InputError(f"several files are saved as {name!r} ({choices}): name one with its extension")
    return matches[0]


def load_object(registry: SaverRegistry, files_dir: Path, name: str) -> Any:
    """Read back what ``save`` wrote under ``name`` (see ``find_file``)."""
    path = find_file(files_dir, name)
    return registry.loader_for(path)(path)


def list_files(files_dir: Path) -> list[str]:
    """Names (with extension, '/' between folders) of everything saved under ``files_dir``."""
    if not files_dir.is_dir():
        return []
    return sorted(
        p.relative_to(files_dir).as_posix()
        for p in files_dir.rglob("*")
        if p.is_file() and not p.name.startswith(".")
    )


def _glob_escape(text: str) -> str:
    return "".join(f"[{c}]" if c in "*?[]" else c for c in text)
