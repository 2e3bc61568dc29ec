"""Mistyped config keys: a warning when a job that used the experiment API never read some of its
config, in stderr.log, result.json and status; ``submit --strict`` fails such a job."""
from __future__ import annotations

import json
import pickle
import sys
from pathlib import Path

import pytest
import yaml

from expq.experiment import config_reads
from expq.experiment.config_reads import ReadLog, TrackedConfig
from expq.worker import config_check
from expq.worker.config_check import recorded_reads, unread_keys

TRAIN = """
import expq
exp = expq.Experiment("t")

@exp.capture
def train(lr=0.5, model=None, **rest):
    return lr

@exp.capture(prefixes=["opt"])
def optimizer(momentum=0.0):
    return momentum

train()
optimizer()
print(exp.config.get("epochs", 1))
"""


def test_a_typo_in_a_sweep_key_is_warned_about_in_stderr_result_and_status(root, script):
    train = script("train.py", TRAIN.replace("**rest", "model2=None"))
    ids = root.submit("--experiment", "t", "--sweep", "lrate=0.1,0.01", "--set", "opt.momentum=0.9",
                      "--set", "opt.nesterov=true", "--", sys.executable, str(train))
    root.drain()
    jobs = root.jobs()
    warning = "config keys never read: opt.nesterov, lrate"  # in the order of the config
    for job in ids:
        assert jobs[job]["state"] == "done"
        assert jobs[job]["warnings"] == [warning]
        run_dir = Path(jobs[job]["run_dir"])
        assert json.loads((run_dir / "result.json").read_text())["warnings"] == [warning]
        assert f"expq: warning: {warning}\n" in (run_dir / "stderr.log").read_text()
    assert "config keys never read: opt.nest" in root.expq("status", check=True).stdout  # the reason column, cut
    assert warning in root.expq("show", str(ids[0]), check=True).stdout


def test_keys_read_by_capture_config_lookups_and_placeholders_give_no_warning(root, script):
    train = script("train.py", TRAIN.replace("**rest", "model2=None"))
    (job,) = root.submit("--set", "lr=0.1", "--set", "model.depth=2", "--set", "opt.momentum=0.9",
                         "--set", "epochs=3", "--set", "seed=4", "--strict", "--",
                         sys.executable, str(train), "--seed", "{seed}")
    root.drain()
    assert root.jobs()[job]["warnings"] == [] and root.state(job) == "done"


def test_strict_fails_a_job_with_unread_keys(root, script):
    train = script("train.py", TRAIN.replace("**rest", "model2=None"))
    (job,) = root.submit("--strict", "--retries", "2", "--set", "lrate=0.1", "--", sys.executable, str(train))
    root.drain()
    record = root.jobs()[job]
    assert record["state"] == "failed"
    assert record["reason"] == "config keys never read: lrate (--strict)"
    assert record["exit_code"] == 0  # the program itself succeeded
    assert record["attempts"] == 1  # not retried: the same config would fail the same way
    assert record["warnings"] == ["config keys never read: lrate"]


def test_a_job_without_the_experiment_api_gets_no_warning(root):
    (job,) = root.submit("--strict", "--set", "anything=1", "--", sys.executable, "-c", "pass")
    root.drain()
    assert root.state(job) == "done" and root.jobs()[job]["warnings"] == []


def test_unread_keys_are_named_coarsest_first():
    config = {"lr": 1, "model": {"depth": 2, "width": 3}, "optimizer": {"name": "sgd", "momentum": 0.9}, "x": {}}
    assert unread_keys(config, {"lr", "model.depth"}) == ["model.width", "optimizer", "x"]
    assert unread_keys(config, {"lr", "model", "optimizer.name", "optimizer.momentum", "x"}) == []


@pytest.mark.parametrize(("use", "read"), [
    (lambda c: c["lr"], {"lr"}),
    (lambda c: c.get("lr"), {"lr"}),
    (lambda c: c.get("missing", 3), set()),
    (lambda c: c["model"]["depth"], {"model.depth"}),
    (lambda c: dict(c["model"]), {"model.depth", "model.width"}),
    (lambda c: (lambda **kw: kw)(**c["model"]), {"model.depth", "model.width"}),
    (lambda c: json.dumps(c), {"lr", "model"}),
    (lambda c: list(c.items()), {"lr", "model"}),
    (lambda c: "lr" in c, set()),
    (lambda c: yaml.safe_dump(c), {"lr", "model"}),
    (lambda c: yaml.safe_dump(c["model"]), {"model.depth", "model.width"}),
    (lambda c: pickle.dumps(c), {"lr", "model"}),
])
def test_tracked_config_sees_reads(use, read):
    log = ReadLog()
    use(TrackedConfig({"lr": 0.1, "model": {"depth": 2, "width": 3}}, log))
    assert log.keys == read


def test_reads_of_every_process_are_united(tmp_path):
    assert recorded_reads(tmp_path) is None  # nothing recorded: the API was not used
    for keys in ({"a"}, {"b.c"}):
        log = ReadLog()
        log.keys = keys
        log.save(tmp_path)
    assert recorded_reads(tmp_path) == {"a", "b.c"}


def test_writer_and_reader_agree_on_the_folder_name():
    assert config_reads.READS_DIR == config_check.READS_DIR


def test_a_tracked_config_behaves_like_the_copy_it_is():
    config = TrackedConfig({"model": {"depth": 2}}, ReadLog())
    config["model"]["depth"] = 5
    assert config["model"]["depth"] == 5 and config["model"] is config["model"]
    assert config == {"model": {"depth": 5}} and isinstance(config, dict)
