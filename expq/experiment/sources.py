"""Reproducibility records: a snapshot of the project's sources and its git commit.

The project directory is the git work tree of the main script (or of the current directory),
else the main script's directory. Paths are matched relative to it, with '/' separators,
using ``re.search``: a file is copied if it matches ``include`` and neither it nor any of its
folders matches ``exclude`` (which replaces ``DEFAULT_EXCLUDE``: combine them with ``|`` to
extend it). Always skipped whatever ``exclude`` says: version-control folders, ``__pycache__``,
``site-packages``/``dist-packages``, folders holding a ``pyvenv.cfg`` (virtualenvs of any name),
the expq root, the run directory itself, files over ``max_bytes``, and any other expq root or
folder of runs found in the project whatever its name (a second root called ``root-api/`` must
not copy its ``run.json`` files into every run): see ``_holders_of_runs``.
"""
from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from expq import contract

__all__ = ["GitInfo", "git_info", "project_dir", "snapshot_sources", "DEFAULT_INCLUDE", "DEFAULT_EXCLUDE"]

log = logging.getLogger(__name__)

DEFAULT_INCLUDE = r"\.(py|pyx|pxd|ipynb|ya?ml|json|toml|cfg|ini|sh|txt|md)$"
DEFAULT_EXCLUDE = (
    r"(^|/)(\.[^/]*|__pycache__|venv|env|site-packages|dist-packages|node_modules|build|dist"
    r"|expq-root|wandb|mlruns|outputs|[^/]*\.egg-info)(/|$)"
)
_ALWAYS_SKIP = re.compile(r"(^|/)(\.git|\.hg|\.svn|__pycache__|site-packages|dist-packages)(/|$)")
DEFAULT_MAX_BYTES = 1 << 20
DEFAULT_MAX_FILES = 5000


@dataclass(frozen=True)
class GitInfo:
    """The commit a run started from; ``dirty`` is True when tracked or untracked files differ."""

    commit: str | None
    dirty: bool | None
    root: str | None


def _git(args: list[str], cwd: Path) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() if done.returncode == 0 else None


def _start_dir() -> Path:
    main = getattr(sys.modules.get("__main__"), "__file__", None)
    return Path(main).resolve().parent if main else Path.cwd()


def git_info(start: Path | None = None) -> GitInfo:
    """Commit and dirty flag of the repository holding ``start`` (default: the main script's folder)."""
    where = start or _start_dir()
    root = _git(["rev-parse", "--show-toplevel"], where)
    if root is None:
        return GitInfo(None, None, None)
    commit = _git(["rev-parse", "HEAD"], where)
    status = _git(["status", "--porcelain"], where)
    return GitInfo(commit, None if status is None else bool(status), root)


def project_dir(git: GitInfo | None = None) -> Path:
    """The folder whose sources a snapshot copies: the git work tree, else the main script's folder."""
    if git is not None and git.root:
        return Path(git.root)
    return _start_dir()


def snapshot_sources(
    source: Path,
    target: Path,
    include: str = DEFAULT_INCLUDE,
    exclude: str = DEFAULT_EXCLUDE,
    skip: tuple[Path, ...] = (),
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_files: int = DEFAULT_MAX_FILES,
) -> list[str]:
    """Copy the matching files of ``source`` into ``target``; return their relative paths.

    ``skip`` lists folders never entered (the expq root, the run directory itself). The walk
    lists first and copies after, so folders found to hold runs are left out entirely.
    """
    wanted, unwanted = re.compile(include), re.compile(exclude)
    skipped = {os.path.realpath(p) for p in skip}
    candidates: list[str] = []
    holders: set[str] = set()
    for folder, dirs, files in os.walk(source):
        rel_folder = os.path.relpath(folder, source)
        rel_folder = "" if rel_folder == "." else rel_folder.replace(os.sep, "/") + "/"
        holder = _holder_of_runs(rel_folder, files)
        if holder is not None:
            holders.add(holder)
            dirs[:] = []
            continue
        dirs[:] = sorted(
            d for d in dirs
            if not unwanted.search(rel_folder + d) and not _ALWAYS_SKIP.search(rel_folder + d)
            and os.path.realpath(os.path.join(folder, d)) not in skipped
            and not os.path.exists(os.path.join(folder, d, "pyvenv.cfg"))
        )
        candidates.extend(rel_folder + name for name in sorted(files)
                          if wanted.search(rel_folder + name) and not unwanted.search(rel_folder + name))
    copied: list[str] = []
    for rel in candidates:
        if any(rel.startswith(holder) for holder in holders):
            continue
        path = os.path.join(source, rel)
        try:
            if not os.path.isfile(path) or os.path.getsize(path) > max_bytes:
                continue
            if len(copied) >= max_files:
                log.warning("source snapshot stopped at %d files; narrow include= or exclude=", max_files)
                return copied
            destination = target / rel
            destination.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, destination)
        except OSError as error:  # a file vanishing mid-walk must not fail the experiment
            log.warning("source snapshot skipped %s: %s", rel, error)
            continue
        copied.append(rel)
    return copied


def _holder_of_runs(rel_folder: str, files: list[str]) -> str | None:
    """The folder to leave out (relative, ending in '/') when ``rel_folder`` is part of a store of runs.

    A run directory (``run.json`` with ``run.log`` from this API, or ``job.json`` with ``run.env``
    from a worker: pairs no ordinary project has) at ``<x>/experiments/<e>/<run>`` means ``<x>``
    is an expq root, and so does ``<x>/queue/next_id``; a run directory elsewhere takes the
    folder holding it. Never the project folder itself: a root that *is* the project
    (``--root .``) loses only its ``experiments/`` or ``queue/``.
    """
    parts = rel_folder.rstrip("/").split("/") if rel_folder else []
    if parts and parts[-1] == contract.QUEUE_DIR and "next_id" in files:
        return _folder(parts[:-1]) or contract.QUEUE_DIR + "/"
    names = set(files)
    is_run = {contract.RUN_JSON, contract.RUN_LOG} <= names or {contract.JOB_JSON, contract.RUN_ENV} <= names
    if not is_run or not parts:
        return None
    if len(parts) >= 3 and parts[-3] == contract.EXPERIMENTS_DIR:
        return _folder(parts[:-3]) or contract.EXPERIMENTS_DIR + "/"
    return _folder(parts[:-1]) or _folder(parts)


def _folder(parts: list[str]) -> str:
    return "/".join(parts) + "/" if parts else ""
