"""Defaults from ``expq.toml`` (current directory, else the root), overridden by flags; shell
completion of job ids and experiment names from the root."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest


def test_defaults_from_the_current_directory_and_flags_override_them(root, tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    (project / "expq.toml").write_text('[submit]\nexperiment = "mnist"\ntimeout = "2h"\nretries = 2\n'
                                      'tag = ["base"]\n')
    (first,) = [int(x) for x in root.expq("submit", "--", "true", cwd=project, check=True).stdout.split()]
    (second,) = [int(x) for x in root.expq("submit", "--experiment", "other", "--timeout", "90", "--", "true",
                                           cwd=project, check=True).stdout.split()]
    jobs = root.jobs()
    assert (jobs[first]["experiment"], jobs[first]["timeout"], jobs[first]["retries"], jobs[first]["tags"]) == \
        ("mnist", 7200.0, 2, ["base"])
    assert (jobs[second]["experiment"], jobs[second]["timeout"], jobs[second]["retries"]) == ("other", 90.0, 2)


def test_defaults_from_the_root_when_the_directory_has_none(root, tmp_path):
    root.submit("--", "true")
    (root.path / "expq.toml").write_text('[submit]\ngpus = 0\npriority = 5\n[worker]\nslots = 3\ndrain = true\n')
    (job,) = [int(x) for x in root.expq("submit", "--", "true", cwd=tmp_path, check=True).stdout.split()]
    assert root.jobs()[job]["priority"] == 5
    worker = subprocess.run([sys.executable, "-m", "expq", "--root", str(root.path), "worker", "--gpus", "none",
                             "--poll", "0.05"], capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert worker.returncode == 0  # drain = true from the file: it exits once the queue is empty
    assert "with 3 slot(s)" in worker.stderr
    assert root.state(job) == "done"


@pytest.mark.parametrize(("text", "message"), [
    ('[submit]\nfoo = 1\n', "[submit] has no option 'foo'"),
    ('[submit]\ntimeout = "2x"\n', "[submit] timeout: '2x' is not a duration"),
    ('[submit]\ngpus = -1\n', "[submit] gpus: '-1' is not a whole number >= 0 for --gpus"),
    ('[worker]\ndrain = "yes"\n', "[worker] drain: expected true or false"),
    ('[nope]\na = 1\n', "[nope] is not a command with options"),
    ('x = [', "cannot read it"),
    ('[worker]\ndetach = true\n', "[worker] detach cannot come from a file"),
])
def test_a_bad_defaults_file_is_one_line_and_exit_2(root, tmp_path, text, message):
    root.submit("--", "true")
    (tmp_path / "expq.toml").write_text(text)
    done = root.expq("submit", "--", "true", cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.startswith(f"expq: error: {tmp_path / 'expq.toml'}: ") and message in done.stderr
    assert done.stderr.count("\n") == 1
    assert len(root.jobs()) == 1


def _complete(root, line: str, tmp_path) -> list[str]:
    out = tmp_path / "completions"
    env = {**os.environ, "_ARGCOMPLETE": "1", "COMP_LINE": line, "COMP_POINT": str(len(line)),
           "_ARGCOMPLETE_STDOUT_FILENAME": str(out), "_ARGCOMPLETE_IFS": "\n"}
    subprocess.run([sys.executable, "-m", "expq"], env=env, capture_output=True, timeout=60)
    return [word.strip() for word in out.read_text().split("\n")]  # a single match ends in a space


def test_completion_offers_job_ids_and_experiments_from_the_root(root, tmp_path):
    root.submit("--experiment", "mnist", "--sweep", "x=range(12)", "--", "true")
    root.drain()
    ids = _complete(root, f"expq --root {root.path} show 1", tmp_path)
    assert sorted(ids) == ["1", "10", "11", "12"]
    assert _complete(root, f"expq --root {root.path} runs mn", tmp_path) == ["mnist"]
    assert "--skip-existing" in _complete(root, f"expq --root {root.path} submit --sk", tmp_path)
