"""A job's child process: started in its own session with its logs as its stdout and stderr,
reaped with ``wait4`` for its rusage, and killed together with every process it started."""
from __future__ import annotations

import errno
import os
import signal
import stat
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from expq._fs import which
from expq.contract import ATTEMPT_VAR, RUN_DIR_VAR
from expq.worker import cgroup

if TYPE_CHECKING:  # psutil is imported where a process tree is searched: a worker starts 20 ms sooner
    import psutil

__all__ = ["spawn", "ExitStatus", "reap", "reap_exited", "JobTree", "process_started", "pid_alive"]


def spawn(command: Sequence[str], cwd: str, env: Mapping[str, str], stdout_fd: int, stderr_fd: int,
          pass_fds: Sequence[int]) -> int:
    """Start the job and return its pid; the log descriptors are handed over, nothing is pumped.

    ``posix_spawn`` (vfork + exec inside libc) costs less per job than ``subprocess.Popen``. It has no
    working-directory action, so the worker steps into ``cwd`` around the call unless it is there
    already (the usual case: four syscalls fewer per job); its other threads (GPU probes, cgroup
    moves) use absolute paths only, so nothing else depends on the directory. Signals the worker
    ignores (SIGPIPE, SIGXFSZ) are reset to their defaults in the child, as
    ``Popen(restore_signals=True)`` does, and so is SIGHUP, which the worker ignores to outlive its
    terminal.

    Raises:
        OSError: the command cannot be executed (not found, not executable), or ``cwd`` is no
            directory (the error's ``filename`` is then ``cwd``).
    """
    where = os.stat(cwd)
    if not stat.S_ISDIR(where.st_mode):
        raise NotADirectoryError(errno.ENOTDIR, "not a directory", cwd)
    executable = which(command[0], env.get("PATH", os.defpath), cwd)
    actions = [(os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
               (os.POSIX_SPAWN_DUP2, stdout_fd, 1), (os.POSIX_SPAWN_DUP2, stderr_fd, 2)]
    home = None if os.path.samestat(where, os.stat(".")) else os.open(".", os.O_RDONLY | os.O_DIRECTORY)
    for fd in pass_fds:
        os.set_inheritable(fd, True)  # the GPU locks stay held while this child lives
    try:
        if home is not None:
            os.chdir(cwd)
        return os.posix_spawn(executable, list(command), env, file_actions=actions, setsid=True,
                              setsigdef=(signal.SIGPIPE, signal.SIGXFSZ, signal.SIGHUP))
    finally:
        if home is not None:
            os.fchdir(home)
            os.close(home)
        for fd in pass_fds:
            os.set_inheritable(fd, False)  # ...and no later job's child inherits them


@dataclass(frozen=True)
class ExitStatus:
    """How a child ended: an exit code, or the signal that killed it; peak RSS from its rusage."""

    exit_code: int | None
    signal: str | None
    peak_rss_bytes: int

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def reap_exited(pids: Collection[int]) -> list[tuple[int, ExitStatus]]:
    """The children among ``pids`` that have exited, reaped: one ``waitid`` per exited child, plus
    one, instead of a ``wait4`` per running child (with 32 slots the worker steps once per job end).
    An exited child that is not among ``pids`` (a GPU probe's, which its own thread reaps) is left
    alone, and each of ``pids`` is then asked in turn."""
    ended: list[tuple[int, ExitStatus]] = []
    while True:
        try:
            found = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:  # no children at all
            return ended
        if found is None:
            return ended
        if found.si_pid not in pids:
            break
        status = reap(found.si_pid)
        if status is None:  # seen exited, yet not reapable: never loop on it, ask each in turn
            break
        ended.append((found.si_pid, status))
    reaped = {pid for pid, _ in ended}
    return ended + [(pid, status) for pid in pids if pid not in reaped and (status := reap(pid)) is not None]


def reap(pid: int) -> ExitStatus | None:
    """The child's status if it has exited (it is reaped then), else None; never blocks."""
    try:
        got, status, usage = os.wait4(pid, os.WNOHANG)
    except ChildProcessError:
        return ExitStatus(None, None, 0)
    if got == 0:
        return None
    peak = usage.ru_maxrss * 1024
    if os.WIFSIGNALED(status):
        return ExitStatus(None, signal.Signals(os.WTERMSIG(status)).name, peak)
    return ExitStatus(os.waitstatus_to_exitcode(status), None, peak)


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def process_started(pid: int) -> float:
    """A process's start time, which together with its pid names it uniquely: the figure
    ``psutil.Process.create_time`` gives (ticks since boot plus the boot time), read from ``/proc``.

    Raises:
        ProcessLookupError: no such process.
    """
    return _stat(pid)[1]


def pid_alive(pid: int, started: float) -> bool:
    """Whether ``pid`` still names the process that started at ``started`` (not a recycled pid)."""
    try:
        state, since = _stat(pid)
    except ProcessLookupError:
        return False
    return abs(since - started) < 0.05 and state != "Z"


def _stat(pid: int) -> tuple[str, float]:
    """(state letter, start time) of a process, from ``/proc/<pid>/stat``."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()  # the command name may hold spaces
        with open("/proc/stat", "rb") as system:
            boot = next(float(line.split()[1]) for line in system if line.startswith(b"btime"))
    except (FileNotFoundError, ProcessLookupError):
        raise ProcessLookupError(errno.ESRCH, "no such process", pid) from None
    return fields[0].decode(), int(fields[19]) / _CLOCK_TICKS + boot


class JobTree:
    """Every process of one job attempt: its cgroup where there is one, the child, its descendants,
    its process group, and any process carrying the job's ``EXPQ_RUN_DIR`` and ``EXPQ_ATTEMPT`` (a
    grandchild that started its own session and was re-parented still inherits them). The attempt
    number keeps a kill meant for one attempt away from a later attempt of the same job."""

    def __init__(self, pid: int, pgid: int, run_dir: str, trust_pid: bool = True, attempt: int | None = None,
                 cgroup: Path | None = None) -> None:
        """``trust_pid=False`` for a pid read from a dead worker's lease, which may have been recycled:
        then only the cgroup and processes carrying the job's variables count."""
        self.pid = pid
        self.pgid = pgid
        self.run_dir = run_dir
        self.trust_pid = trust_pid
        self.attempt = None if attempt is None else str(attempt)
        self.cgroup = cgroup
        self._known: dict[int, psutil.Process] = {}

    def snapshot(self, scan_environ: bool = True) -> list[psutil.Process]:
        """Find the tree's live processes now; remembered, so a later signal reaches them all."""
        import psutil

        found: list[psutil.Process] = []
        if self.trust_pid:
            try:
                root = psutil.Process(self.pid)
                found = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                found = []
        if self.cgroup is not None:
            found += _processes(cgroup.pids(self.cgroup))
        me = os.getpid()
        for proc in psutil.process_iter(["pid"]):
            if proc.pid == me or proc.pid in self._known:
                continue
            try:
                if (self.trust_pid and os.getpgid(proc.pid) == self.pgid) or (scan_environ and self._carries(proc)):
                    found.append(proc)
            except (psutil.Error, ProcessLookupError, PermissionError):
                continue
        for proc in found:
            if proc.pid != me:
                self._known.setdefault(proc.pid, proc)
        return list(self._known.values())

    def _carries(self, proc: psutil.Process) -> bool:
        environ = proc.environ()
        return environ.get(RUN_DIR_VAR) == self.run_dir and (
            self.attempt is None or environ.get(ATTEMPT_VAR) == self.attempt)

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to every process of the tree still alive (ESRCH tolerated: it just ended)."""
        import psutil

        if self.cgroup is not None and sig == signal.SIGKILL:
            cgroup.kill(self.cgroup)
        for proc in self.snapshot():
            try:
                proc.send_signal(sig)  # psutil checks the pid still names the same process
            except psutil.Error:
                continue
        if not self.trust_pid:
            return
        try:
            os.killpg(self.pgid, sig)
        except (ProcessLookupError, PermissionError):
            return

    def alive(self) -> bool:
        """Whether a process found so far (or any in the cgroup) still runs; a zombie has ended."""
        import psutil

        if self.cgroup is not None and cgroup.pids(self.cgroup):
            return True
        for proc in self._known.values():
            try:
                if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                    return True
            except psutil.NoSuchProcess:
                continue
        return False

    def kill_group(self) -> None:
        """SIGKILL whatever is left in the job's process group (one syscall); what is left in its
        cgroup dies when the cgroup is discarded (``JobCgroups.discard``, on the cgroup thread)."""
        try:
            os.killpg(self.pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return


def _processes(pids: list[int]) -> list[psutil.Process]:
    import psutil

    found = []
    for pid in pids:
        try:
            found.append(psutil.Process(pid))
        except psutil.NoSuchProcess:
            continue
    return found
