"""``expq slurm``: the sbatch script, input validation and the calls to SLURM's tools, without SLURM.

The SLURM tools are stand-in shell scripts on PATH that record their arguments; the tests against a
real cluster are in tests/slurm/test_expq_slurm.py.
"""
from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from expq.errors import InputError
from expq.launcher import slurm
from expq.launcher.cli import main
from expq.launcher.slurm import WorkerArray


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def tree(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*")) if path.exists() else []


@pytest.fixture
def tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A PATH of fake sbatch/squeue/scancel/scontrol; each appends its argv to calls.log."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    outputs = {"sbatch": "4242;cluster", "scontrol": "KillWait                = 30 sec", "scancel": "",
               "squeue": f"$(<{shlex.quote(str(tmp_path / 'squeue.out'))})"}
    for name, output in outputs.items():
        script = bin_dir / name
        script.write_text(f'#!/bin/bash\necho "{name} $*" >> {shlex.quote(str(log))}\necho "{output}"\n')
        script.chmod(0o755)
    (tmp_path / "squeue.out").write_text("")
    monkeypatch.setenv("PATH", str(bin_dir))
    return log


# -- time, grace, validation ----------------------------------------------------------------------

@pytest.mark.parametrize("text, seconds", [
    ("1", 60), ("90", 5400), ("5:30", 330), ("1:00:00", 3600), ("2-0", 172800), ("1-2:30", 95400),
    ("0-0:0:45", 45), ("UNLIMITED", None), ("infinite", None)])
def test_parse_time(text: str, seconds: int | None) -> None:
    assert slurm.parse_time(text) == seconds


@pytest.mark.parametrize("text", ["", "1h", "1:2:3:4", "-1", "1-", "0", "0:00", "a-1"])
def test_parse_time_refuses(text: str) -> None:
    with pytest.raises(InputError, match=r"invalid --time"):
        slurm.parse_time(text)


@pytest.mark.parametrize("kill_wait, grace", [(None, 10.0), (30, 15.0), (5, 2.5), (1, 0.5), (120, 30.0)])
def test_default_grace_stays_below_kill_wait(kill_wait: int | None, grace: float) -> None:
    assert slurm.default_grace(kill_wait) == grace
    if kill_wait is not None:
        slurm.validate(WorkerArray(Path("/tmp/r"), 1, grace=grace), kill_wait)


@pytest.mark.parametrize("changes, kill_wait, message", [
    ({"workers": 0}, None, "invalid --workers 0: must be at least 1"),
    ({"gpus_per_worker": -1}, None, "invalid --gpus-per-worker -1: must be 0 or more"),
    ({"slots_per_worker": 0}, None, "invalid --slots-per-worker 0: must be at least 1"),
    ({"cpus_per_worker": 0}, None, "invalid --cpus-per-worker 0: must be at least 1"),
    ({"mem": "lots"}, None, "invalid --mem 'lots': expected a size like 16G or 4000M"),
    ({"partition": "gpu a100"}, None, "invalid --partition 'gpu a100': must be one word"),
    ({"time": "1h"}, None, "invalid --time '1h'"),
    ({"signal_lead": 0}, None, "invalid --signal-lead 0: must be 1 to 65535 seconds"),
    ({"time": "1", "signal_lead": 61}, None, "--signal-lead 61 s is longer than --time 1 (60 s)"),
    ({"grace": 0.0}, None, "invalid --grace 0: must be positive"),
    ({"grace": 120.0}, None, "--grace 120 s must be shorter than --signal-lead 120 s"),
    ({"grace": 5.0}, 5, "--grace 5 s is not below the cluster's KillWait (5 s)"),
    ({"lease_timeout": 0.0}, None, "invalid --lease-timeout 0"),
    ({"root": Path("relative")}, None, "invalid root 'relative': must be an absolute path"),
    ({"root": Path('/tmp/a"b')}, None, "an sbatch script cannot name a path"),
    ({"root": Path("/tmp/50%")}, None, "an sbatch script cannot name a path"),
    ({"sbatch_args": ("account=x",)}, None, "give each sbatch option with its value in one argument"),
    ({"sbatch_args": ("--array=0-9",)}, None, "invalid --sbatch-arg '--array=0-9': use expq's --workers instead"),
    ({"sbatch_args": ("-J", )}, None, "expq sets it itself"),
    ({"sbatch_args": ("--time=5",)}, None, "use expq's --time instead"),
    ({"sbatch_args": ("--output=x",)}, None, "expq sets it itself"),
    ({"sbatch_args": ("--signal=B:TERM@60",)}, None, "use expq's --signal-lead instead"),
    ({"sbatch_args": ("--gres=gpu:a100:1",), "gpus_per_worker": 1}, None, "ask for GPUs one way only"),
    ({"sbatch_args": ("--qos=x\n#SBATCH --x",)}, None, "must be one line"),
])
def test_validate_refuses(tmp_path: Path, changes: dict[str, object], kill_wait: int | None, message: str) -> None:
    fields: dict[str, object] = {"root": tmp_path / "root", "workers": 2, "grace": 2.0, **changes}
    with pytest.raises(InputError) as info:
        slurm.validate(WorkerArray(**fields), kill_wait)  # type: ignore[arg-type]
    assert message in str(info.value)
    assert "\n" not in str(info.value)  # one line, whatever the input


def test_validate_refuses_a_root_under_a_file(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match="is not a writable directory"):
        slurm.validate(WorkerArray(tmp_path / "file" / "root", 1), None)


# -- the script -----------------------------------------------------------------------------------

def _sbatch_lines(text: str) -> list[str]:
    return [line[len("#SBATCH "):] for line in text.splitlines() if line.startswith("#SBATCH ")]


def _exec_argv(text: str) -> list[str]:
    [line] = [line for line in text.splitlines() if line.startswith("exec ")]
    return shlex.split(line)[1:]


@pytest.mark.parametrize("root_name", ["root", "my expq root", "it's-ü"])
def test_script_runs_one_worker_per_task_with_exec(tmp_path: Path, root_name: str) -> None:
    root = tmp_path / root_name
    array = WorkerArray(root, workers=3, gpus_per_worker=2, slots_per_worker=4, partition="gpu", time="2:00:00",
                        cpus_per_worker=8, mem="64G", signal_lead=300, grace=7.0,
                        sbatch_args=("--account=proj", "--constraint=a100|h100"), python="/venv/bin/python")
    text = slurm.script(array, root / "slurm" / "w.sbatch", 0.0, 30)
    assert text.startswith("#!/bin/bash\n")
    options = _sbatch_lines(text)
    assert options[:8] == ["--job-name=expq-worker", "--array=0-2", "--nodes=1", "--ntasks=1",
                           f'--comment="expq-root:{root.resolve()}"', f'--chdir="{root}"',
                           f'--output="{root}/slurm/logs/%A_%a.out"', "--signal=B:USR1@300"]
    assert options[8:] == ["--gres=gpu:2", "--cpus-per-task=8", "--mem=64G", "--partition=gpu", "--time=2:00:00",
                           "--account=proj", "--constraint=a100|h100"]
    assert _exec_argv(text) == ["/venv/bin/python", "-m", "expq", "--root", str(root), "worker", "--gpus", "auto",
                                "--drain", "--slots", "4", "--grace", "7", "--lease-timeout", "300"]
    assert _exec_argv(text) == slurm.worker_command(array)
    assert "KillWait is 30 s" in text and f"sbatch {shlex.quote(str(root / 'slurm' / 'w.sbatch'))}" in text
    # every #SBATCH line comes before the first command, or sbatch ignores it
    commands = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert [c.split()[0] for c in commands] == ["unset", "exec"] and commands[0].startswith("unset EXPQ_HOST ")
    assert text.rindex("#SBATCH") < text.index("unset EXPQ_HOST")
    assert subprocess.run(["bash", "-n"], input=text, text=True).returncode == 0


def test_script_without_gpus_hands_out_none(tmp_path: Path) -> None:
    """A worker without --gres must not take the submitting shell's CUDA_VISIBLE_DEVICES for its own."""
    text = slurm.script(WorkerArray(tmp_path, 1, drain=False, lease_timeout=None), None, 0.0, None)
    argv = _exec_argv(text)
    assert argv[argv.index("--gpus") + 1] == "none"
    assert "--drain" not in argv and "--lease-timeout" not in argv
    assert not any(o.startswith("--gres") for o in _sbatch_lines(text))
    assert "KillWait could not be read" in text


def test_script_with_gpus_asked_through_sbatch_arg_uses_auto(tmp_path: Path) -> None:
    argv = _exec_argv(slurm.script(WorkerArray(tmp_path, 1, sbatch_args=("--gres=gpu:a100:2",)), None, 0.0, None))
    assert argv[argv.index("--gpus") + 1] == "auto"


def test_parse_squeue_keeps_comment_with_bars() -> None:
    out = ("7_0|7|8|RUNNING|node1|1:02|1:00:00|None|expq-root:/data/a|b\n"
           "7_1|7|7|PENDING||0:00|1:00:00|Resources|expq-root:/data/a|b\n"
           "garbage line\n")
    first, second = slurm.parse_squeue(out)
    assert (first.job_id, first.array_job, first.own_id, first.node) == ("7_0", "7", "8", "node1")
    assert first.comment == second.comment == "expq-root:/data/a|b"
    assert (second.state, second.reason, second.node) == ("PENDING", "Resources", "")
    assert first.matches("7") and first.matches("7_0") and first.matches("8") and not first.matches("7_1")
    assert slurm.belongs_to(first, Path("/data/a|b")) and not slurm.belongs_to(first, Path("/data/a"))


# -- the command line -----------------------------------------------------------------------------

def test_start_submits_the_saved_script(tmp_path: Path, tools: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "new root"
    code, out, err = cli(capsys, "--root", str(root), "slurm", "start", "--workers", "2", "--gpus-per-worker", "1",
                         "--sbatch-arg=--account=proj")
    assert (code, out) == (0, "4242\n"), err
    [script] = (root / "slurm").glob("workers-*.sbatch")
    assert tools.read_text().splitlines()[-1] == f"sbatch --parsable {script}"
    text = script.read_text()
    assert "--grace 15 --lease-timeout 300" in text  # KillWait 30 -> grace 15; NFS-proof lease timeout
    assert "--account=proj" in _sbatch_lines(text)
    assert (root / "slurm" / "logs").is_dir() and (root / "queue" / "pending").is_dir()
    assert "submitted 2 worker(s) as SLURM array job 4242" in err


def test_start_root_option_after_the_action(tmp_path: Path, tools: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = cli(capsys, "slurm", "start", "--workers", "1", "--root", str(tmp_path / "r"))
    assert (code, out) == (0, "4242\n")
    assert list((tmp_path / "r" / "slurm").glob("*.sbatch"))


def test_start_dry_run_prints_and_writes_nothing(tmp_path: Path, tools: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "root"
    code, out, err = cli(capsys, "--root", str(root), "slurm", "start", "--workers", "4", "--dry-run")
    assert code == 0 and err == ""
    assert "#SBATCH --array=0-3" in out and "(--dry-run: not saved)" in out
    assert not root.exists()
    assert "sbatch " not in tools.read_text()


@pytest.mark.parametrize("argv, message", [
    (["--workers", "0"], "expq: error: invalid --workers 0: must be at least 1\n"),
    (["--workers", "1", "--time", "soon"], "expq: error: invalid --time 'soon'"),
    (["--workers", "1", "--grace", "40"], "expq: error: --grace 40 s is not below the cluster's KillWait (30 s)"),
    (["--workers", "x"], "expq: error: argument --workers: invalid int value: 'x'"),
    ([], "expq: error: the following arguments are required: --workers"),
])
def test_start_bad_input_exits_2_and_writes_nothing(tmp_path: Path, tools: Path, capsys: pytest.CaptureFixture[str],
                                                    argv: list[str], message: str) -> None:
    code, out, err = cli(capsys, "--root", str(tmp_path / "root"), "slurm", "start", *argv)
    assert code == 2 and out == ""
    assert err.startswith(message) and err.count("\n") == 1
    assert not (tmp_path / "root").exists()


def test_start_without_sbatch_exits_1_and_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    code, out, err = cli(capsys, "--root", str(tmp_path / "root"), "slurm", "start", "--workers", "1")
    assert (code, out) == (1, "")
    assert err == ("expq: error: sbatch not found on PATH: run this where SLURM's commands are installed "
                   "(a login node, or after `module load slurm`)\n")
    assert not (tmp_path / "root").exists()


def test_start_refused_by_sbatch_keeps_no_script(tmp_path: Path, tools: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    sbatch = tools.parent / "bin" / "sbatch"
    sbatch.write_text("#!/bin/bash\necho 'sbatch: error: invalid partition specified: nope' >&2\nexit 1\n")
    code, out, err = cli(capsys, "--root", str(tmp_path / "root"), "slurm", "start", "--workers", "1",
                         "--partition", "nope")
    assert (code, out) == (1, "")
    assert err == "expq: error: sbatch failed: sbatch: error: invalid partition specified: nope\n"
    assert tree(tmp_path / "root" / "slurm") == ["logs"]


def _squeue(tmp_path: Path, root: Path, other: Path) -> None:
    mine, theirs = f"expq-root:{root.resolve()}", f"expq-root:{other.resolve()}"
    (tmp_path / "squeue.out").write_text(
        f"7_0|7|8|RUNNING|node1|1:02|1:00:00|None|{mine}\n"
        f"7_1|7|7|PENDING||0:00|1:00:00|Resources|{mine}\n"
        f"9_0|9|9|RUNNING|node2|0:10|1:00:00|None|{theirs}\n")


def test_stop_signals_running_workers_and_cancels_pending_ones(tmp_path: Path, tools: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    root, other = tmp_path / "root", tmp_path / "other"
    _squeue(tmp_path, root, other)
    code, out, err = cli(capsys, "--root", str(root), "slurm", "stop")
    assert code == 0, err
    assert out == "7_0 signalled (SIGTERM: re-queue jobs, exit)\n7_1 cancelled (was pending)\n"
    calls = [line for line in tools.read_text().splitlines() if line.startswith("scancel")]
    assert calls == ["scancel --batch --signal=TERM 7_0", "scancel 7_1"]  # 9_0 serves another root


def test_stop_force_and_explicit_ids(tmp_path: Path, tools: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "root"
    _squeue(tmp_path, root, tmp_path / "other")
    assert cli(capsys, "--root", str(root), "slurm", "stop", "--force", "7_0")[:2] == (0, "7_0 cancelled\n")
    code, out, err = cli(capsys, "--root", str(root), "slurm", "stop", "9")
    assert (code, out) == (2, "")
    assert err == f"expq: error: no expq worker job 9 of {root} in squeue (see 'expq slurm list')\n"
    assert [line for line in tools.read_text().splitlines() if line.startswith("scancel")] == ["scancel 7_0"]


def test_list_joins_squeue_with_live_workers(tmp_path: Path, tools: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import json
    import os
    import socket

    root = tmp_path / "root"
    _squeue(tmp_path, root, tmp_path / "other")
    workers, leases = root / "queue" / "workers", root / "queue" / "leases"
    workers.mkdir(parents=True)
    leases.mkdir()
    host = socket.gethostname()
    for worker_id, slurm_job in (("w-a", "7_0"), ("w-local", "")):
        (workers / f"{worker_id}.json").write_text(json.dumps(
            {"worker_id": worker_id, "host": host, "pid": os.getpid(), "gpus": ["0"], "slurm_job": slurm_job}))
    (workers / "w-dead.json").write_text(json.dumps({"worker_id": "w-dead", "host": host, "pid": 2 ** 22 + 1}))
    (leases / "00000005.json").write_text(json.dumps({"job_id": 5, "attempt": {"worker_id": "w-a"}}))
    code, out, err = cli(capsys, "--root", str(root), "slurm", "list")
    assert code == 0, err
    lines = [line.split() for line in out.splitlines()]
    assert lines[0] == ["SLURM", "STATE", "NODE", "TIME", "LIMIT", "WORKER", "GPUS", "JOBS"]
    assert lines[1:] == [["7_0", "RUNNING", "node1", "1:02", "1:00:00", "w-a", "0", "5"],
                         ["7_1", "PENDING", "(Resources)", "0:00", "1:00:00", "-", "-", "-"],
                         ["-", "-", host, "-", "-", "w-local", "0", "-"]]
    code, out, _ = cli(capsys, "--root", str(root), "slurm", "list", "--json")
    rows = json.loads(out)["workers"]
    assert [(r["slurm_job"], r["worker_id"], r["jobs"]) for r in rows] == [
        ("7_0", "w-a", [5]), ("7_1", None, []), (None, "w-local", [])]


def test_help_stays_light() -> None:
    """``expq slurm`` is registered at every start-up; it must not import subprocess-heavy code."""
    code = ("import sys\nfrom expq.launcher.cli import build_parser\nbuild_parser()\n"
            "print('expq.launcher.slurm' in sys.modules, 'subprocess' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]
