"""The old ExperimentManager README's examples, adapted only in the import (and its typos fixed)."""
from __future__ import annotations

import json
from pathlib import Path

from experiment_scripts import only_run, run_script

README = '''
from expq import createExperiment, getExperiment
manager = createExperiment('my first experiment')
assert manager.experiment_dir.is_dir()

config1 = {
        "name" : "Victor",
        "status" : 1,
        "details" : {
            "age" : 22,
            "towns" : {
                0 : "Brussels",
                1 : "Paris"
                }
            }
        }

manager.add_config(config1) #this will update the general configurations dict since we are not in a run

@manager.capture()
def function1(time,name,details):
    return time, name, details

@manager.capture()
def function2(name,status,details):
    return name, status, details

@manager.capture(prefixes=['name','details.towns','details.age','details'])
def function3(names,towns,details):
    return names, towns, details

@manager.capture(prefixes=['name','details.towns','details.age','details'])
def funciton3(name,towns,age,details):
    return name, towns, age, details

details = {"age" : 22,"towns" : {0 : "Brussels",1 : "Paris"}}
assert function1(0) == (0, 'Victor', details)
assert function2() == ('Victor', 1, details)
assert funciton3() == ('Victor', {0 : "Brussels",1 : "Paris"}, 22, details)
try:
    function3()
except Exception as error:
    print("function3:", error)
else:
    raise AssertionError("a parameter that no config key provides must not get a value")

@manager.capture
def with_kwargs(name, **kwargs):
    return name, kwargs
assert with_kwargs() == ('Victor', {"status": 1, "details": details})

@manager.command
def train():
    getExperiment().log_scalar('loss', 0.5)
    manager.log_scalar('loss', 0.25)
    manager.save({"done": True}, 'state')
    print("training")
    return "trained"

def evaluate():
    manager.save([1, 2, 3], 'preds')

manager.add_command(evaluate)
assert manager.run(train) == "trained"
manager.run('evaluate')
manager.run(evaluate)
print("ok")
'''


def test_old_readme_examples_work(tmp_path: Path) -> None:
    done = run_script(tmp_path, README)
    assert "ok" in done.stdout
    assert "function3() needs 'names'" in done.stdout
    run = only_run(tmp_path / "expq-root", "my first experiment")
    train = run / "runs" / "train"
    assert (train / "metrics" / "loss.csv").read_text().splitlines()[1].startswith("0,0.5,")
    assert json.loads((train / "files" / "state.json").read_text()) == {"done": True}
    assert sorted(p.name for p in (run / "runs").iterdir()) == ["evaluate", "evaluate-1", "train"]
    assert "training" in (run / "stdout.log").read_text()
    assert (run / "sources" / "script.py").exists()
