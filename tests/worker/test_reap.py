"""Reaping the children that exited, and only those of the worker's jobs."""
from __future__ import annotations

import os
import signal

from expq.worker.child import reap_exited


def _spawn(*argv: str) -> int:
    return os.posix_spawnp(argv[0], list(argv), os.environ)


def _exited(pid: int) -> bool:
    return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None


def test_only_exited_job_children_are_reaped_and_another_child_is_left_to_its_owner(wait_until):
    quick, slow, failing, foreign = _spawn("true"), _spawn("sleep", "30"), _spawn("sh", "-c", "exit 3"), _spawn("true")
    try:
        wait_until(lambda: _exited(quick) and _exited(failing) and _exited(foreign), timeout=10)
        ended = dict(reap_exited({quick, slow, failing}))
        assert set(ended) == {quick, failing}
        assert ended[quick].exit_code == 0 and ended[failing].exit_code == 3
        assert reap_exited({slow}) == []  # still running
        assert os.waitpid(foreign, 0)[0] == foreign  # not reaped by the worker's call
        os.kill(slow, signal.SIGKILL)
        wait_until(lambda: _exited(slow), timeout=10)
        [(pid, status)] = reap_exited({slow})
        assert pid == slow and status.signal == "SIGKILL"
    finally:
        try:
            os.kill(slow, signal.SIGKILL)
            os.waitpid(slow, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
