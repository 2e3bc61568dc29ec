"""Fixtures for tests against a real SLURM cluster (started by ci/slurm-ci.sh, see ci/test.sh).

Every test in this folder is marked `slurm` and needs the `slurm_cluster` fixture (requested
automatically). Without a usable cluster the tests skip with the reason, except under CI=true,
where they fail: in CI the SLURM tests must run.

A cluster counts as usable when `sbatch` is on PATH, EXPQ_SLURM_AVAILABLE is set (ci/test.sh sets
it once `ci/slurm-ci.sh up` succeeded; set it yourself to use another cluster you may submit to)
and `sinfo` shows a node that is idle (or already running jobs).
"""
from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _run(args: list[str], timeout: float = 30.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def _unusable_reason() -> str | None:
    if not shutil.which("sbatch"):
        return "sbatch is not on PATH (no SLURM installed; ci/test.sh starts one when run as root)"
    if not os.environ.get("EXPQ_SLURM_AVAILABLE"):
        if os.environ.get("EXPQ_SLURM_UNAVAILABLE_REASON"):   # set by ci/test.sh
            return os.environ["EXPQ_SLURM_UNAVAILABLE_REASON"]
        return "EXPQ_SLURM_AVAILABLE is not set (ci/test.sh sets it after `ci/slurm-ci.sh up`)"
    try:
        res = _run(["sinfo", "-h", "-N", "-o", "%t"], timeout=15)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"sinfo failed: {exc}"
    states = res.stdout.split()
    if res.returncode != 0 or not any(s.rstrip("~#!%$@^-") in {"idle", "mix", "alloc"} for s in states):
        return f"sinfo shows no usable node (rc={res.returncode}, states={states}, stderr={res.stderr.strip()!r})"
    return None


class Slurm:
    """Small helpers around the SLURM command-line tools, for tests."""

    def __init__(self, wait_until: Callable[..., object], workdir: Path | None = None):
        self.wait_until = wait_until
        self.workdir = workdir   # default cwd of sbatch, so slurm-*.out files land there

    # -- submitting -------------------------------------------------------------------------
    def sbatch(self, *args: str, script: str | Path | None = None, wrap: str | None = None,
               cwd: str | Path | None = None, env: dict[str, str] | None = None) -> str:
        """Submit with `sbatch --parsable ARGS [--wrap CMD | SCRIPT]`; return the job id.

        Without -o/--output in ARGS the output goes to `slurm-%j.out` (`slurm-%A_%a.out` for
        arrays) in `cwd` (default: a temporary folder, never the repository). For an array the
        id is the array's job id (`%A`).
        """
        cmd = ["sbatch", "--parsable", *args]
        if wrap is not None:
            cmd += ["--wrap", wrap]
        if script is not None:
            cmd.append(str(script))
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=30, cwd=cwd or self.workdir,
                             env=None if env is None else {**os.environ, **env}, stdin=subprocess.DEVNULL)
        assert res.returncode == 0, f"{shlex.join(cmd)} failed ({res.returncode}): {res.stderr.strip()}"
        return res.stdout.strip().split(";")[0]   # "<id>[;cluster]"

    def write_script(self, path: str | Path, body: str) -> Path:
        """Write a bash batch script (shebang added) and make it executable."""
        path = Path(path)
        path.write_text("#!/bin/bash\n" + body)
        path.chmod(0o755)
        return path

    # -- looking ----------------------------------------------------------------------------
    def squeue_ids(self, job_id: str) -> list[str]:
        """Ids still listed by squeue for a job (an array lists one line per task or range)."""
        res = _run(["squeue", "-h", "-j", job_id, "-o", "%i"])
        return res.stdout.split() if res.returncode == 0 else []   # unknown id -> rc 1: gone

    def job(self, job_id: str) -> dict[str, str]:
        """`scontrol show job -o ID` as a dict (first record; finished jobs stay MinJobAge s)."""
        res = _run(["scontrol", "show", "job", "-o", job_id])
        if res.returncode != 0 or not res.stdout.strip():
            return {}
        line = res.stdout.splitlines()[0]
        # KEY=VALUE pairs separated by spaces; values may contain spaces (e.g. Command with args),
        # so split only before a " Key=" token.
        return dict(re.findall(r"(\w[\w:/]*)=(.*?)(?= \w[\w:/]*=|$)", line))

    def state(self, job_id: str) -> str:
        """JobState of one job (e.g. PENDING, RUNNING, COMPLETED, CANCELLED, TIMEOUT); '' if unknown."""
        return self.job(job_id).get("JobState", "")

    # -- waiting ----------------------------------------------------------------------------
    def wait_gone(self, job_id: str, timeout: float = 60.0) -> None:
        """Wait until the job (every task of an array) has left squeue."""
        self.wait_until(lambda: not self.squeue_ids(job_id), timeout=timeout, interval=0.1,
                        message=lambda: f"job {job_id} still in squeue: {self.squeue_ids(job_id)}")

    def wait_state(self, job_id: str, states: str | Iterable[str], timeout: float = 60.0) -> str:
        """Wait until the job's JobState is one of `states`; return it."""
        wanted = {states} if isinstance(states, str) else set(states)
        return self.wait_until(lambda: self.state(job_id) if self.state(job_id) in wanted else "",
                               timeout=timeout, interval=0.1,
                               message=lambda: f"job {job_id} is {self.state(job_id)!r}, wanted {sorted(wanted)}")

    def wait_file(self, path: str | Path, timeout: float = 60.0, contains: str = "") -> str:
        """Wait until `path` exists (and contains `contains`); return its text."""
        path = Path(path)

        def ready() -> bool:
            try:
                return contains in path.read_text()
            except FileNotFoundError:
                return False

        self.wait_until(ready, timeout=timeout, interval=0.05,
                        message=lambda: f"{path} missing or without {contains!r}")
        return path.read_text()

    def cancel(self, *job_ids: str, signal: str | None = None) -> None:
        cmd = ["scancel", *([f"--signal={signal}"] if signal else []), *job_ids]
        res = _run(cmd)
        assert res.returncode == 0, f"{shlex.join(cmd)} failed: {res.stderr.strip()}"


@pytest.fixture(scope="session")
def slurm_cluster(wait_until, tmp_path_factory: pytest.TempPathFactory) -> Slurm:
    """A usable SLURM cluster, or skip (fail under CI=true) with the reason."""
    reason = _unusable_reason()
    if reason:
        if _in_ci():
            pytest.fail(f"SLURM tests must run in CI, but: {reason}", pytrace=False)
        pytest.skip(reason)
    return Slurm(wait_until, tmp_path_factory.mktemp("slurm-jobs"))


@pytest.fixture(autouse=True)
def _needs_slurm(slurm_cluster: Slurm) -> None:
    """Every test in this folder needs the cluster, asked for or not."""


@pytest.fixture
def slurm(slurm_cluster: Slurm, tmp_path: Path) -> Slurm:
    """The cluster helpers, with jobs cancelled at the end of the test if still queued."""
    submitted: list[str] = []
    real_sbatch = slurm_cluster.sbatch

    class _Tracked(Slurm):
        def sbatch(self, *args, **kwargs):
            kwargs.setdefault("cwd", tmp_path)
            job_id = real_sbatch(*args, **kwargs)
            submitted.append(job_id)
            return job_id

    helper = _Tracked(slurm_cluster.wait_until, tmp_path)
    yield helper
    left = [j for j in submitted if slurm_cluster.squeue_ids(j)]
    if left:
        _run(["scancel", "--signal=KILL", *left])
        for j in left:
            try:
                slurm_cluster.wait_gone(j, timeout=30)
            except AssertionError:
                pass


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark every test collected from this folder `slurm` (so `-m "not slurm"` leaves them out)."""
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.slurm)
