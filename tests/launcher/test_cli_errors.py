"""Bad input: one line on stderr naming the bad value, exit code 2, and the queue exactly as it was."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from expq.launcher.cli import main
from expq.queue.ids import last_id
from expq.queue.states import State
from expq.queue.store import JobQueue


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def tree(root: Path) -> dict[str, str]:
    """Every file under the root with a digest of its content: 'unchanged' means this is equal."""
    files = {}
    for directory, _, names in os.walk(root):
        for name in names:
            path = Path(directory, name)
            files[str(path.relative_to(root))] = hashlib.sha1(path.read_bytes()).hexdigest()
    return files


@pytest.fixture
def root(tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Path:
    """A queue holding job 1; the current directory holds config files good and bad."""
    monkeypatch.chdir(tmp_path)
    Path("bad.yaml").write_text("a: [1\n")
    Path("list.yaml").write_text("- 1\n- 2\n")
    Path("dup.json").write_text('{"a": 1, "a": 2}')
    Path("secret.yaml").write_text("a: 1\n")
    os.chmod("secret.yaml", 0)
    root = tmp_path / "root"
    assert run(capsys, "--root", str(root), "submit", "--", "true") == (0, "1\n", "")
    return root


SUBMIT_ERRORS = [
    # sweeps
    (["--sweep", "lr", "--", "echo"], "invalid --sweep 'lr': expected KEY=V1,V2,..."),
    (["--sweep", "lr=[1,2", "--", "echo"], "invalid --sweep 'lr=[1,2': unbalanced '[', missing ']'"),
    (["--sweep", "lr=", "--", "echo"], "invalid --sweep 'lr=': no values; expected KEY=V1,V2,..."),
    (["--sweep", "a=1,2", "--sweep", "a=3", "--", "echo"],
     "duplicate --sweep key 'a': give all its values in one --sweep"),
    # placeholders
    (["--", "echo", "{missing}"], "unknown placeholder {missing} in command: no such config key"),
    (["--set", "a=1", "--", "echo", "{a.b}"], "unknown placeholder {a.b} in command: no such config key"),
    # config files and --set
    (["--config", "nope.yaml", "--", "echo"], "cannot read --config 'nope.yaml': No such file or directory"),
    (["--config", "bad.yaml", "--", "echo"],
     "invalid --config 'bad.yaml' line 2, column 1: expected YAML (did not find expected ',' or ']')"),
    (["--config", "list.yaml", "--", "echo"], "invalid --config 'list.yaml': expected a mapping at top level, got list"),
    (["--config", "dup.json", "--", "echo"], "invalid --config 'dup.json': duplicate key 'a'"),
    (["--set", "lr", "--", "echo"], "invalid --set 'lr': expected KEY=VALUE"),
    # names that would escape or break the tree
    (["--experiment", "..", "--", "echo"], "invalid experiment name '..': must not start with a dot"),
    (["--experiment", "a/b", "--", "echo"],
     "invalid experiment name 'a/b': must not contain '/', '\\', NUL or control characters"),
    (["--experiment", "a\0b", "--", "echo"],
     "argument --experiment: 'a\\x00b' contains a NUL character (see 'expq submit --help')"),
    (["--experiment", "", "--", "echo"], "invalid experiment name '': must not be empty"),
    (["--experiment", "x" * 129, "--", "echo"],
     f"invalid experiment name {'x' * 20!r}...: longer than 128 characters"),
    (["--name", "../up", "--", "echo"], "invalid run name '../up': must not start with a dot"),
    (["--name", "", "--", "echo"], "invalid run name '': must not be empty"),
    (["--name", "n" * 200, "--", "echo"], f"invalid run name {'n' * 20!r}...: longer than 128 characters"),
    # options
    (["--after", "99", "--", "echo"], "no such job: 99"),
    (["--after", "1", "--after", "42", "--", "echo"], "no such job: 42"),
    (["--after", "abc", "--", "echo"],
     "argument --after: 'abc' is not a job id, a list (3,4,5) or a range (3-40) (see 'expq submit --help')"),
    (["--timeout", "-1", "--", "echo"],
     "argument --timeout: '-1' is not a duration: expected seconds (90) or a duration such as 90s, 2h30m, 1d (see 'expq submit --help')"),
    (["--timeout", "0", "--", "echo"],
     "argument --timeout: '0' is out of range: expected a duration above 0 and at most 100 years "
     "(see 'expq submit --help')"),
    (["--timeout", "nan", "--", "echo"],
     "argument --timeout: 'nan' is not a duration: expected seconds (90) or a duration such as 90s, 2h30m, 1d (see 'expq submit --help')"),
    (["--gpus", "-1", "--", "echo"],
     "argument --gpus: '-1' is not a whole number >= 0 for --gpus (see 'expq submit --help')"),
    (["--retries", "x", "--", "echo"],
     "argument --retries: 'x' is not a whole number >= 0 for --retries (see 'expq submit --help')"),
    (["--priority", "10000", "--", "echo"],
     "argument --priority: '10000' is not a whole number from -9999 to 9999 (see 'expq submit --help')"),
    (["--env", "NOVALUE", "--", "echo"],
     "argument --env: 'NOVALUE' is not KEY=VALUE with a KEY of letters, digits and _ (not starting with a digit)"
     " (see 'expq submit --help')"),
    (["--env", "1X=2", "--", "echo"],
     "argument --env: '1X=2' is not KEY=VALUE with a KEY of letters, digits and _ (not starting with a digit)"
     " (see 'expq submit --help')"),
    (["--env", "EXPQ_RUN_DIR=/x", "--", "echo"],
     "argument --env: 'EXPQ_RUN_DIR=/x': EXPQ_RUN_DIR is set by the worker for each job and cannot be overridden"
     " (see 'expq submit --help')"),
    (["--env", "CUDA_VISIBLE_DEVICES=0", "--", "echo"],
     "argument --env: 'CUDA_VISIBLE_DEVICES=0': CUDA_VISIBLE_DEVICES is set by the worker for each job and "
     "cannot be overridden (see 'expq submit --help')"),
    (["--cwd", "no/such/dir", "--", "echo"], "no such directory for --cwd: no/such/dir"),
    (["--bogus", "--", "echo"], "unrecognized arguments: --bogus (see 'expq --help')"),
    # the command itself
    ([], "no command given: expected expq submit [options] -- COMMAND [ARGS...]"),
    (["--"], "no command given: expected expq submit [options] -- COMMAND [ARGS...]"),
    (["--", ""], "invalid command: the program name is empty"),
]


@pytest.mark.parametrize(("argv", "message"), SUBMIT_ERRORS, ids=[" ".join(a)[:40] for a, _ in SUBMIT_ERRORS])
def test_bad_submit_fails_with_one_line_and_changes_nothing(
        root: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    before = tree(root)
    code, out, err = run(capsys, "--root", str(root), "submit", *argv)
    assert (code, out, err) == (2, "", f"expq: error: {message}\n")
    assert tree(root) == before
    queue = JobQueue(root)
    assert queue.list_ids(State.PENDING) == [1] and os.listdir(queue.paths.incoming) == []
    assert last_id(queue.paths) == 1


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their mode")
def test_unreadable_config_file(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = tree(root)
    code, _, err = run(capsys, "--root", str(root), "submit", "--config", "secret.yaml", "--", "echo")
    assert (code, err) == (2, "expq: error: cannot read --config 'secret.yaml': Permission denied\n")
    assert tree(root) == before


def test_a_config_that_is_a_directory_is_unreadable(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    Path("conf.d").mkdir()
    before = tree(root)
    code, _, err = run(capsys, "--root", str(root), "submit", "--config", "conf.d", "--", "echo")
    assert (code, err) == (2, "expq: error: cannot read --config 'conf.d': Is a directory\n")
    assert tree(root) == before


def test_one_bad_value_in_a_1000_job_sweep_enqueues_nothing(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    values = ",".join([*(str(i / 10) for i in range(499)), "oops", *(str(i) for i in range(500, 1000))])
    before = tree(root)
    code, out, err = run(capsys, "--root", str(root), "submit", "--sweep", f"lr={values}", "--sweep", "seed=1",
                         "--", "train", "--lr", "{lr:.3f}")
    assert (code, out) == (2, "")
    assert err.startswith("expq: error: invalid placeholder '{lr:.3f}' in command: format '.3f' does not apply "
                          "to str 'oops'") and err.endswith("(job 500 of 1,000)\n") and err.count("\n") == 1
    assert tree(root) == before and last_id(JobQueue(root).paths) == 1


def test_a_sweep_with_a_bad_value_among_1000_fails_before_ids_are_taken(
        root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    values = ",".join(str(i) for i in range(999)) + ",[unclosed"
    before = tree(root)
    code, _, err = run(capsys, "--root", str(root), "submit", "--sweep", f"a={values}", "--", "echo", "{a}")
    assert code == 2 and err.startswith("expq: error: invalid --sweep 'a=0,1,2,")
    assert err.endswith(": unbalanced '[', missing ']'\n") and err.count("\n") == 1
    assert tree(root) == before


@pytest.mark.parametrize("command", ["show", "cancel", "retry", "logs", "status"])
def test_unknown_job_id(root: Path, capsys: pytest.CaptureFixture[str], command: str) -> None:
    before = tree(root)
    assert run(capsys, "--root", str(root), command, "42") == (2, "", "expq: error: no such job: 42\n")
    assert tree(root) == before


@pytest.mark.parametrize("command", ["cancel", "retry"])
def test_one_unknown_id_among_good_ones_changes_nothing(root: Path, capsys: pytest.CaptureFixture[str],
                                                        command: str) -> None:
    if command == "retry":
        assert run(capsys, "--root", str(root), "cancel", "1")[0] == 0
    before = tree(root)
    assert run(capsys, "--root", str(root), command, "1", "42") == (2, "", "expq: error: no such job: 42\n")
    assert tree(root) == before


@pytest.mark.parametrize("command", ["show", "cancel", "logs"])
def test_an_id_that_is_not_a_number(root: Path, capsys: pytest.CaptureFixture[str], command: str) -> None:
    code, _, err = run(capsys, "--root", str(root), command, "abc")
    assert code == 2
    assert err == f"expq: error: argument ID: 'abc' is not a job id (a positive number like 12) (see 'expq {command} --help')\n"


def test_state_errors_from_cancel_and_retry(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--root", str(root), "retry", "1") == (
        2, "", "expq: error: cannot retry job 1: it is pending (only cancelled or failed jobs can be)\n")


def test_a_cancel_request_that_cannot_be_written_is_one_line(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from expq.queue.states import State
    from expq.queue.store import JobQueue

    queue = JobQueue(root)
    assert queue.move(queue.get(1)[1], State.PENDING, State.RUNNING, claim="0c0ffee0")  # a worker runs it
    queue.paths.cancel_file(1).mkdir()  # a folder where the request goes, put there by hand
    code, out, err = run(capsys, "--root", str(root), "cancel", "1")
    assert (code, out) == (2, "")
    assert err.startswith("expq: error: cannot request the cancel of job 1: ") and err.count("\n") == 1


@pytest.mark.parametrize("command", [["status"], ["show", "1"], ["cancel", "1"], ["retry", "1"], ["logs", "1"]])
def test_commands_other_than_submit_need_an_existing_queue(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                           command: list[str]) -> None:
    missing = tmp_path / "nothing"
    code, out, err = run(capsys, "--root", str(missing), *command)
    assert (code, out) == (2, "")
    assert err == f"expq: error: no such queue: {missing} (submit a job first, or pass --root)\n"
    assert not missing.exists()


def test_usage_errors_are_one_line_with_exit_code_2(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "frobnicate")
    assert (code, out, err.count("\n")) == (2, "", 1)
    assert err.startswith("expq: error: argument COMMAND: invalid choice: 'frobnicate' (choose from 'init', 'submit', ")
    assert err.endswith(") (see 'expq --help')\n")
    code, _, err = run(capsys, "status", "--state", "sleeping")
    assert code == 2 and err.count("\n") == 1 and "'sleeping' is not a state" in err
    code, _, err = run(capsys, "status", "--watch", "-1")
    assert code == 2 and "'-1' is not a duration" in err
    code, _, err = run(capsys)
    assert code == 2 and err.endswith("expq: error: a command is required (see 'expq --help')\n")


def test_watch_and_json_do_not_mix(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--root", str(root), "status", "--json", "--watch") == (
        2, "", "expq: error: --watch cannot be combined with --json\n")

