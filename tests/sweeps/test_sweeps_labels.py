"""Tags and notes: ``submit --tag``, ``expq tag ID... +T -T``, ``expq note``; shown and filterable."""
from __future__ import annotations

import json
import subprocess
import sys

import pytest

from expq.launcher.cli import main
from expq.queue.labels import LABELS_JSON


def test_tags_from_submit_and_tag_are_shown_and_filter_status(root):
    ids = root.submit("--experiment", "e", "--sweep", "x=1,2,3", "--tag", "base", "--", "true", "{x}")
    done = root.expq("tag", str(ids[0]), f"{ids[1]}", "+best", "-base", "+lr/high")
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{ids[0]} best,lr/high\n{ids[1]} best,lr/high\n"
    jobs = root.jobs()
    assert [jobs[j]["tags"] for j in ids] == [["best", "lr/high"], ["best", "lr/high"], ["base"]]
    best = json.loads(root.expq("status", "--json", "--tag", "best", check=True).stdout)
    assert [job["id"] for job in best["jobs"]] == ids[:2]
    assert best["counts"]["pending"] == 2
    text = root.expq("status", "--tag", "base", check=True).stdout
    assert "(1 matching of 3 jobs)" in text
    table = root.expq("status", check=True).stdout.splitlines()
    assert "TAGS" in table[2] and any("best,lr/high" in row for row in table[3:])
    assert root.expq("tag", str(ids[2])).stdout == f"{ids[2]} base\n"  # no +/-: prints them


def test_a_note_is_kept_shown_and_replaced(root):
    (job,) = root.submit("--", "true")
    assert root.expq("note", str(job), "lr too high, diverged").returncode == 0
    assert root.expq("note", str(job)).stdout == "lr too high, diverged\n"
    assert root.jobs()[job]["note"] == "lr too high, diverged"
    shown = json.loads(root.expq("show", str(job), "--json", check=True).stdout)
    assert shown["job"]["note"] == "lr too high, diverged"
    assert "note: lr too high, diverged" in root.expq("show", str(job), check=True).stdout
    root.expq("note", str(job), "", check=True)
    assert root.expq("note", str(job)).stdout == ""


def test_labels_survive_the_run_and_reach_the_runs_table(root):
    (job,) = root.submit("--experiment", "e", "--tag", "keep", "--", "true")
    root.drain()
    run_dir = root.path / root.queue.get(job)[1].run_dir
    assert json.loads((run_dir / LABELS_JSON).read_text())["tags"] == ["keep"]
    assert (run_dir / "result.json").exists()  # the worker used the folder the tag made
    from expq.experiment.reading import StoredExperiment, open_path
    from expq.experiment.table import runs_table

    experiment = open_path("e", root=root.path)
    assert isinstance(experiment, StoredExperiment)
    table = runs_table(experiment.all_runs(), [])
    assert [row.get("tags") for row in table.rows] == [["keep"]]


@pytest.mark.parametrize(("argv", "message"), [
    (["tag", "1", "+"], "invalid tag ''"),
    (["tag", "1", "+a b"], "invalid tag 'a b'"),
    (["tag", "+a", "1"], "give the job ids first"),
    (["tag", "1", "+a", "2"], "'2' comes after the tags"),
    (["tag", "1", "+a", "-a"], "'a' is both added and removed"),
    (["tag", "1", "x"], "tags need a + (add) or - (remove) in front"),
    (["tag", "1", "+a", "--root", "elsewhere"], "--root must come before the ids"),
    (["tag", "9", "+a"], "no such job: 9"),
    (["note", "9", "x"], "no such job: 9"),
    (["submit", "--tag=-x", "--", "true"], "invalid tag '-x'"),
    (["status", "--tag", "a,b"], "invalid tag 'a,b'"),
])
def test_bad_tags_and_ids_change_nothing(root, argv, message):
    (job,) = root.submit("--tag", "kept", "--", "true")
    done = root.expq(*argv)
    assert done.returncode == 2
    assert message in done.stderr and done.stderr.startswith("expq: error: ")
    assert root.jobs()[job]["tags"] == ["kept"] and len(root.jobs()) == 1


def test_concurrent_taggers_lose_no_tag(tmp_path):
    run_dir = tmp_path / "e" / "1-x"
    code = ("import sys; from pathlib import Path; from expq.queue.labels import update_labels\n"
            "for n in range(25): update_labels(Path(sys.argv[1]), add=[sys.argv[2] + str(n)])")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(run_dir), t]) for t in "abcd"]
    assert [proc.wait(60) for proc in procs] == [0, 0, 0, 0]
    tags = json.loads((run_dir / LABELS_JSON).read_text())["tags"]
    assert sorted(tags) == sorted(f"{t}{n}" for t in "abcd" for n in range(25))


def test_tag_in_process_output(tmp_path, capsys):
    root = str(tmp_path / "r")
    assert main(["--root", root, "submit", "--", "true"]) == 0
    capsys.readouterr()
    assert main(["--root", root, "tag", "1", "+a"]) == 0
    assert capsys.readouterr().out == "1 a\n"
